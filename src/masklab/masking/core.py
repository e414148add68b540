"""The masking core every strategy shares: per-block random numbers, budgeted selection, `corrupt()`.

A strategy only says what its *units* are (tokens, words, spans, phrases) and how much each one weighs;
`select_units` spends the masking budget on them and `corrupt` hides the chosen tokens. All randomness is
a pure function of (row key, stream, position), so a block's masks never depend on its batch.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from masklab.data.phrases import splitmix64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

# Independent random streams of one block: each use of randomness reads its own.
SELECT, CUT, CORRUPT, PICK, SPAN, RATE = 1, 2, 3, 4, 5, 6


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, index, ...): independent streams without shared state."""
    digest = hashlib.blake2b(np.asarray(parts, dtype=np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class BlockRandom:
    """Uniform numbers in [0, 1) for a (B, T) batch: value (row, stream, t) = SplitMix64(key_row + counter * golden).

    Counter-based generation (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"; the
    SplitMix64 finaliser of Steele et al. 2014) draws a whole batch in a few vectorised operations while
    every row keeps its own stream, keyed by its block: no per-row generator objects, no shared state.
    """

    def __init__(self, row_keys, length: int):
        self.keys = np.asarray(row_keys, dtype=np.uint64).reshape(-1, 1)  # (B, 1)
        self.positions = np.arange(1, length + 1, dtype=np.uint64)[None, :]  # (1, T); SplitMix adds golden first
        self.shape = (len(self.keys), length)

    def uniform(self, stream: int) -> np.ndarray:
        """(B, T) float64 uniforms of one stream."""
        x = splitmix64(self.keys + (self.positions + np.uint64(stream << 32)) * _GOLDEN)
        return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _uniform(rng: BlockRandom | torch.Generator, shape, stream: int) -> torch.Tensor:
    """Uniforms from either randomness handle: a `torch.Generator` (a single stream, e.g. for one-off calls)
    or a `BlockRandom` (per-block streams, what the batcher uses)."""
    if isinstance(rng, torch.Generator):
        return torch.rand(shape, generator=rng, dtype=torch.float64)
    return torch.from_numpy(rng.uniform(stream))


def row_rates(rate, rows: int) -> np.ndarray:
    """(B, 1) float64 rates from one rate or one per row (masked diffusion draws a rate per block)."""
    return np.broadcast_to(np.asarray(rate, dtype=np.float64).reshape(-1, 1), (rows, 1))


def exact_count_select(scores: torch.Tensor, eligible: torch.Tensor, rate) -> torch.Tensor:
    """Select the round(rate * n_eligible) lowest-scoring eligible positions of every row (`rate`: one,
    or one per row).

    Exact per-sequence counts (Cramming, arXiv 2212.14034) give the exact masking rate and nearly
    static shapes for sparse prediction, unlike per-token Bernoulli draws.
    """
    counts = budget(eligible.sum(dim=1), rate)
    scores = scores.masked_fill(~eligible, float("inf"))
    k = int(counts.max())
    selected = torch.zeros_like(eligible)
    if k == 0:
        return selected
    order = scores.topk(k, dim=1, largest=False).indices  # (B, k) lowest scores first
    keep = torch.arange(k).unsqueeze(0) < counts.unsqueeze(1)  # (B, k)
    return selected.scatter(1, order, keep)


def bernoulli_select(scores: torch.Tensor, eligible: torch.Tensor, rate) -> torch.Tensor:
    """Each eligible position independently with probability `rate` (BERT's original sampler)."""
    return (scores < torch.from_numpy(row_rates(rate, scores.shape[0]).copy())) & eligible


def budget(n_eligible, rate):
    """Tokens to mask per row: round(rate * n), at least one where anything is eligible (`rate`: one, or one per
    row)."""
    flat = row_rates(rate, len(n_eligible))[:, 0]
    if isinstance(n_eligible, torch.Tensor):
        counts = torch.round(n_eligible.to(torch.float64) * torch.from_numpy(flat.copy())).long()
        return torch.where((counts == 0) & (n_eligible > 0), torch.ones_like(counts), counts)
    counts = np.rint(np.asarray(n_eligible, dtype=np.float64) * flat).astype(np.int64)
    return np.where((counts == 0) & (n_eligible > 0), 1, counts)


def unit_starts(starts: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """(B, T) bool: where a unit begins. Every special token is a unit of its own and ends the unit before
    it, so no unit ever crosses a document boundary or includes [CLS]/[SEP]/padding."""
    s = starts | ~eligible
    s[:, 1:] |= ~eligible[:, :-1]
    s[:, 0] = True
    return s


def unit_first_position(first: np.ndarray) -> np.ndarray:
    """(B, T) int64: position of the first token of each token's unit, given unit starts."""
    positions = np.where(first, np.arange(first.shape[1])[None, :], 0)
    return np.maximum.accumulate(positions, axis=1)


def select_units(
    starts: np.ndarray, weights: np.ndarray, eligible: np.ndarray, rate: float, selection: str, rng: BlockRandom
) -> np.ndarray:
    """Spend the masking budget on whole units; returns the (B, T) bool selection.

    `starts` (B, T) marks where units begin; `weights` (B, T), read at unit starts, is a unit's relative
    chance (inf = before every finite weight, 0 = never).

    Exact selection ranks units by Pareto sampling (Rosén 1997, "On sampling with probability
    proportional to size"): key = u/(1-u) * (1-l)/l, where l = k * w / sum(w * length) is a unit's wanted
    inclusion probability for a budget of k = round(rate * n) tokens; realised inclusion probabilities
    come out very nearly proportional to w. It takes every unit that *starts* before a cut of k tokens
    less the expected overshoot of the unit straddling the cut ((E[L^2]/E[L] - 1) / 2 for a length-biased
    unit). Deciding on starts keeps chosen units' lengths unbiased (trimming the budget-crossing unit
    would favour short spans), never splits a unit, and gives exactly k for single-token units.
    Bernoulli selection takes each unit independently with probability rate * w / mean(w).
    """
    B, T = eligible.shape
    first = unit_starts(starts, eligible)
    unit = np.cumsum(first, axis=1) - 1  # (B, T) unit index of each token within its row
    flat = (unit + np.arange(B)[:, None] * T).ravel()
    length = np.bincount(flat, weights=eligible.ravel(), minlength=B * T).reshape(B, T)  # (B, U=T) tokens per unit
    unit_weight = np.zeros(B * T)
    unit_weight[flat[first.ravel()]] = weights[first]
    unit_weight = unit_weight.reshape(B, T)
    unit_u = np.zeros(B * T)
    unit_u[flat[first.ravel()]] = rng.uniform(SELECT)[first]
    unit_u = unit_u.reshape(B, T)
    live = (length > 0) & (unit_weight > 0)
    if selection == "bernoulli":
        mean_weight = (unit_weight * length * live).sum(1, keepdims=True) / np.maximum(
            (length * live).sum(1, keepdims=True), 1
        )
        chosen = live & (unit_u * mean_weight < row_rates(rate, B) * unit_weight)
    else:
        k = budget(eligible.sum(1), rate)[:, None].astype(np.float64)  # (B, 1)
        finite_weight = np.where(live & np.isfinite(unit_weight), unit_weight, 0.0)
        target = k * finite_weight / np.maximum((finite_weight * length).sum(1, keepdims=True), 1e-12)
        target = np.clip(target, 1e-12, 1 - 1e-9)  # (B, U) wanted inclusion probabilities
        with np.errstate(divide="ignore"):
            key = unit_u / (1.0 - unit_u) * (1.0 - target) / target  # Pareto ranking variables
        key = np.where(np.isinf(unit_weight) & live, unit_u - 2.0, key)  # infinite weight: before all others
        key[~live] = np.inf
        order = np.argsort(key, axis=1, kind="stable")  # (B, U) most wanted units first
        sorted_len = np.take_along_axis(length, order, axis=1)
        covered = np.cumsum(sorted_len, axis=1)
        live_len = length * live
        overshoot = ((live_len**2).sum(1, keepdims=True) / np.maximum(live_len.sum(1, keepdims=True), 1) - 1) / 2
        cut = np.floor(k - overshoot + rng.uniform(CUT)[:, :1])  # (B, 1) stochastic rounding keeps the mean
        cut = np.maximum(cut, np.minimum(k, 1))  # every row with something eligible predicts something
        take = (covered - sorted_len < cut) & np.take_along_axis(live, order, axis=1)
        chosen = np.zeros((B, T), dtype=bool)
        np.put_along_axis(chosen, order, take, axis=1)
    return np.take_along_axis(chosen, unit, axis=1) & eligible


def corrupt(
    input_ids: torch.Tensor,
    selected: torch.Tensor,
    mask_token_id: int,
    replacement_ids: torch.Tensor,
    mask_token_fraction: float,
    random_token_fraction: float,
    rng: BlockRandom | torch.Generator,
    unit_first: torch.Tensor | None = None,
):
    """Hide the selected tokens: [MASK] / random non-special token / unchanged, in the configured split.

    The one corruption step of every strategy, so whole-word, span and phrase masking keep the random
    and unchanged shares (Hugging Face's whole-word collator forces 100% [MASK]). With `unit_first`
    ((B, T) position of each token's unit start) a unit shares one draw: all [MASK], all random or all kept.
    Returns (corrupted input_ids, labels) where labels hold the original id at selected positions and
    -100 elsewhere (the value PyTorch's cross-entropy and Hugging Face models ignore).
    """
    u = _uniform(rng, input_ids.shape, CORRUPT)
    if unit_first is not None:
        u = u.gather(1, unit_first)
    to_mask = selected & (u < mask_token_fraction)
    to_random = selected & (u >= mask_token_fraction) & (u < mask_token_fraction + random_token_fraction)
    picks = (_uniform(rng, input_ids.shape, PICK) * len(replacement_ids)).long()
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    corrupted = torch.where(to_random, replacement_ids[picks], corrupted)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return corrupted, labels
