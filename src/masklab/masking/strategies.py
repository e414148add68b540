"""The masking strategies. Each one only defines its units and their weights; the shared core selects.

A masker has `features` (per-token arrays it reads: "words" = word starts, "pos" = UPOS ids, "phrases" =
1 at a phrase's first token, 2 inside it), `sidecars()` (the costly ones, built once beside the token
shards), `units(...)` -> (unit starts, weights), and `select(...)` -> (B, T) BoolTensor. Register a new
one with `@register("masker", NAME)`; it is then `masking.strategy: NAME` in a run config.
"""

from __future__ import annotations

import numpy as np
import torch

from masklab.config import UPOS_TAGS, MaskingConfig
from masklab.data.phrases import entity_sidecar, pmi_sidecar
from masklab.data.tagging import pos_sidecar
from masklab.masking.core import (
    SELECT,
    SPAN,
    BlockRandom,
    bernoulli_select,
    exact_count_select,
    select_units,
    unit_starts,
)
from masklab.registry import register

SELECTORS = {"exact": exact_count_select, "bernoulli": bernoulli_select}


class UnitMasker:
    """Selects whole units through `select_units`; subclasses define `units`."""

    features: tuple[str, ...] = ("words",)

    def __init__(self, cfg: MaskingConfig):
        self.selection = cfg.selection

    def sidecars(self) -> list:
        return []

    def select(self, input_ids, eligible: np.ndarray, features: dict, rate: float, rng: BlockRandom) -> torch.Tensor:
        starts, weights = self.units(input_ids, eligible, features, rng)
        return torch.from_numpy(select_units(starts, weights, eligible, rate, self.selection, rng))


@register("masker", "random")
class RandomTokenMasker(UnitMasker):
    """Uniformly random tokens (Devlin et al. 2019, arXiv 1810.04805): every token is its own unit."""

    features: tuple[str, ...] = ()

    def units(self, input_ids, eligible: np.ndarray, features: dict, rng: BlockRandom):
        return np.ones(eligible.shape, dtype=bool), np.ones(eligible.shape)

    def select(self, input_ids, eligible: np.ndarray, features: dict, rate: float, rng: BlockRandom) -> torch.Tensor:
        scores = torch.from_numpy(rng.uniform(SELECT))  # select_units would choose the same, with more book-keeping
        return SELECTORS[self.selection](scores, torch.from_numpy(eligible), rate)


@register("masker", "whole_word")
class WholeWordMasker(UnitMasker):
    """Whole words: every sub-token of a chosen word is predicted (Google's BERT whole-word-masking
    release, 2019; Cui et al. 2019, arXiv 1906.08101). Words are the tokenizer's pre-tokenizer words
    (`Encoding.word_ids`), so this works for WordPiece, BPE and Unigram and for any script. The 80/10/10
    split still applies, per token or per word (`masking.corrupt_per`)."""

    def units(self, input_ids, eligible, features, rng):
        return features["words"].astype(bool), np.ones(eligible.shape)


@register("masker", "span")
class SpanMasker(UnitMasker):
    """Contiguous spans of whole words (SpanBERT, Joshi et al. 2020, arXiv 1907.10529): span lengths in
    words ~ Geometric(p) truncated to 1..max_words (renormalised, as SpanBERT's code does: p=0.2 and 10
    give a mean of 3.8 words), until the budget is spent.

    Each row is tiled with back-to-back spans of sampled lengths and tiles are chosen uniformly, so the
    chosen spans follow the configured length distribution; a span cut by a document boundary or the
    block edge is shortened, and spans never split a word.
    """

    def __init__(self, cfg: MaskingConfig):
        super().__init__(cfg)
        self.p = cfg.span.p
        self.max_words = cfg.span.max_words

    def units(self, input_ids, eligible, features, rng):
        words = unit_starts(features["words"].astype(bool), eligible) & eligible  # (B, T) starts of real words
        word_index = np.maximum(np.cumsum(words, axis=1) - 1, 0)  # (B, T) which word of the row a token is in
        u = rng.uniform(SPAN)  # (B, T): one span length per possible span
        lengths = span_lengths(u, self.p, self.max_words)
        first_word = np.cumsum(lengths, axis=1) - lengths  # (B, T) word index where each span begins
        tile_start = np.zeros((u.shape[0], u.shape[1] + 1), dtype=bool)
        np.put_along_axis(tile_start, np.minimum(first_word, u.shape[1]), True, axis=1)
        return words & np.take_along_axis(tile_start, word_index, axis=1), np.ones(eligible.shape)


def span_lengths(u: np.ndarray, p: float, max_words: int) -> np.ndarray:
    """Inverse-CDF draws of Geometric(p) on 1..max_words, renormalised: P(L = l) ~ p (1 - p)^(l - 1)."""
    if p >= 1.0:
        return np.ones(u.shape, dtype=np.int64)
    mass = -np.expm1(max_words * np.log1p(-p))  # P(Geometric <= max_words)
    return np.clip(1 + np.floor(np.log1p(-u * mass) / np.log1p(-p)), 1, max_words).astype(np.int64)


def mean_span_words(p: float, max_words: int) -> float:
    """Mean of `span_lengths`' distribution (3.8 for SpanBERT's p=0.2, max 10)."""
    lengths = np.arange(1, max_words + 1)
    mass = p * (1 - p) ** (lengths - 1)
    return float((lengths * mass).sum() / mass.sum())


@register("masker", "pos")
class PosMasker(UnitMasker):
    """Part-of-speech weighted whole words: a word's chance of being masked is proportional to the weight
    of its UPOS tag, with the overall rate held at the configured value - masking content words more, in
    the line of selective masking (Gu et al. 2020, "Train No Evil: Selective Masking for Task-Guided
    Pre-Training", EMNLP). Tags come from a real tagger (spaCy, parsivar), run once and cached."""

    features = ("words", "pos")

    def __init__(self, cfg: MaskingConfig):
        super().__init__(cfg)
        self.settings = cfg.pos
        default = cfg.pos.weights.get("default", 1.0)
        # index 0 = no tag (specials, untagged characters), then UPOS_TAGS in order
        self.table = np.array([default] + [cfg.pos.weights.get(tag, default) for tag in UPOS_TAGS], dtype=np.float64)

    def sidecars(self) -> list:

        return [pos_sidecar(self.settings.tagger, self.settings.processes)]

    def units(self, input_ids, eligible, features, rng):
        return features["words"].astype(bool), self.table[features["pos"]]


class PhraseMasker(UnitMasker):
    """Units are the phrases of a sidecar (1 at a phrase's first token, 2 inside it) and the single
    words outside them; subclasses name their settings section and the sidecar that finds the phrases."""

    features = ("words", "phrases")
    settings_field = ""  # the MaskingConfig section with this masker's settings
    make_sidecar = None  # staticmethod: settings -> Sidecar

    def __init__(self, cfg: MaskingConfig):
        super().__init__(cfg)
        self.settings = getattr(cfg, self.settings_field)

    def sidecars(self) -> list:
        return [self.make_sidecar(self.settings)]

    @staticmethod
    def phrase_starts(features: dict) -> np.ndarray:
        """Word starts, except those inside a phrase: a phrase is one unit from its first token."""
        return features["words"].astype(bool) & (features["phrases"] != 2)


@register("masker", "entity")
class EntityMasker(PhraseMasker):
    """Knowledge masking (ERNIE, Sun et al. 2019, arXiv 1904.09223): named entities and gazetteer phrases
    are masked as whole units first, then single words fill the rest of the budget."""

    settings_field = "entity"
    make_sidecar = staticmethod(entity_sidecar)

    def units(self, input_ids, eligible, features, rng):
        return self.phrase_starts(features), np.where(features["phrases"] == 1, np.inf, 1.0)


@register("masker", "pmi")
class PmiMasker(PhraseMasker):
    """PMI-Masking (Levine et al. 2021, arXiv 2010.01825): word n-grams (n = 2..max_n) with high
    pointwise mutual information in the training corpus are units; units are chosen uniformly."""

    settings_field = "pmi"
    make_sidecar = staticmethod(pmi_sidecar)

    def units(self, input_ids, eligible, features, rng):
        return self.phrase_starts(features), np.ones(eligible.shape)
