"""Models: size presets, construction through transformers' classes, checkpoint I/O, sparse layers.

presets.py     the shared size presets (BERT miniatures)
build.py       a fresh BERT / ModernBERT masked LM, or a checkpoint to continue from
checkpoint.py  resolving and loading checkpoint directories; atomic training checkpoints
sparse.py      an encoder forward whose final layer runs only at the predicted positions
"""

from masklab.models.build import apply_dropout, attention_implementation, build_model, count_parameters
from masklab.models.checkpoint import load_masked_lm, resolve_checkpoint
from masklab.models.presets import PRESETS, preset_shape

__all__ = [
    "PRESETS",
    "apply_dropout",
    "attention_implementation",
    "build_model",
    "count_parameters",
    "load_masked_lm",
    "preset_shape",
    "resolve_checkpoint",
]
