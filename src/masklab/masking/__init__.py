"""Masking: maskers choose *which* tokens to predict; one shared `corrupt()` decides *how* to hide them.

Splitting selection from corruption means every strategy keeps the configurable 80/10/10 split
(Hugging Face's whole-word collator silently drops the 10% random / 10% kept). Modules:
    core.py        per-block counter-based random numbers, budgeted unit selection, corrupt()
    strategies.py  random, whole_word, span, pos, entity, pmi (`@register("masker", NAME)`)
    batcher.py     MLMBatcher: blocks + features -> {"input_ids", "labels"}, deterministic per block
    batches.py     TrainBatches / eval_batches: deterministic batch streams over packed blocks
                   (item m is a pure function of seed and m)
    stats.py       measured masking statistics (rate, 80/10/10 split, unit lengths, share by POS)
    preview.py     `masklab mask-preview`: blocks as the masker hides them, terminal and HTML
Special tokens and padding are excluded once, in the batcher.
"""

from masklab.masking import strategies  # noqa: F401  (registers the maskers)
from masklab.masking.batcher import MaskedBatch, MLMBatcher, build_masker
from masklab.masking.core import BlockRandom, bernoulli_select, corrupt, derive_seed, exact_count_select, select_units
from masklab.masking.stats import masking_statistics, measure_masking

__all__ = [
    "MLMBatcher",
    "MaskedBatch",
    "build_masker",
    "BlockRandom",
    "bernoulli_select",
    "corrupt",
    "derive_seed",
    "exact_count_select",
    "select_units",
    "masking_statistics",
    "measure_masking",
]
