"""Masking statistics with statistical bounds (the sampling sizes make each bound > 5 sigma)."""

import numpy as np
import pytest
import torch

from masklab.config import build_config
from masklab.masking import MLMBatcher, corrupt, exact_count_select

SPECIAL = 5  # tokenizer fixture ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK]


def blocks_with_specials(tokenizer, n=400, t=256, seed=0):
    g = np.random.default_rng(seed)
    ids = g.integers(SPECIAL, tokenizer.vocab_size, size=(n, t))  # learned tokens; the added sentinels are special
    ids[:, 0] = tokenizer.cls_token_id
    ids[g.random((n, t)) < 0.05] = tokenizer.sep_token_id
    ids[:, -8:] = tokenizer.pad_token_id  # padding must never be selected either
    return ids


def masking(**overrides):
    """The masking section at its own defaults (BERT's 15%, not a preset's training recipe) with `overrides`."""
    return build_config({}, [f"masking.{k}={v}" for k, v in overrides.items()], preset_training=False).masking


@pytest.mark.parametrize("rate", [0.05, 0.15, 0.4, 0.8])
def test_exact_count_gives_the_exact_rate_per_sequence(tiny_tokenizer, rate):
    batcher = MLMBatcher(masking(rate=rate), tiny_tokenizer, seed=1)
    ids = torch.as_tensor(blocks_with_specials(tiny_tokenizer))
    out = batcher(ids, block_ids=range(len(ids)))
    selected = out["labels"] != -100
    eligible = batcher.eligible(ids)
    expected = torch.round(eligible.sum(1).double() * rate).long()
    assert torch.equal(selected.sum(1), expected)
    assert not (selected & ~eligible).any(), "a special or pad token was selected"


def test_bernoulli_rate_is_within_bounds(tiny_tokenizer):
    batcher = MLMBatcher(masking(rate=0.15, selection="bernoulli"), tiny_tokenizer, seed=2)
    ids = torch.as_tensor(blocks_with_specials(tiny_tokenizer))
    selected = batcher(ids, block_ids=range(len(ids)))["labels"] != -100
    eligible = batcher.eligible(ids)
    rate = selected.sum().item() / eligible.sum().item()
    assert abs(rate - 0.15) < 0.01
    assert not (selected & ~eligible).any()


@pytest.mark.parametrize("mask_frac, random_frac", [(0.8, 0.1), (0.5, 0.3), (1.0, 0.0), (0.0, 0.0)])
def test_replacement_split_within_one_percent_over_100k_tokens(tiny_tokenizer, mask_frac, random_frac):
    batcher = MLMBatcher(
        masking(rate=0.5, mask_token_fraction=mask_frac, random_token_fraction=random_frac), tiny_tokenizer, seed=3
    )
    ids = torch.as_tensor(blocks_with_specials(tiny_tokenizer, n=1000))
    out = batcher(ids, block_ids=range(len(ids)))
    sel = out["labels"] != -100
    n = sel.sum().item()
    assert n >= 100_000
    masked = (out["input_ids"][sel] == tiny_tokenizer.mask_token_id).float().mean().item()
    unchanged = (out["input_ids"][sel] == ids[sel]).float().mean().item()
    # a random replacement hits the original token with probability 1/|non-special vocab|
    hit = 1 / (len(tiny_tokenizer) - SPECIAL)
    randomised = (
        ((out["input_ids"][sel] != ids[sel]) & (out["input_ids"][sel] != tiny_tokenizer.mask_token_id))
        .float()
        .mean()
        .item()
    )
    assert abs(masked - mask_frac) < 0.01
    assert abs(randomised - random_frac * (1 - hit)) < 0.01
    assert abs(unchanged - (1 - mask_frac - random_frac * (1 - hit))) < 0.01
    # unselected tokens are never touched
    assert torch.equal(out["input_ids"][~sel], ids[~sel])


def test_random_replacements_are_never_special(tiny_tokenizer):
    batcher = MLMBatcher(masking(rate=0.5, mask_token_fraction=0.0, random_token_fraction=1.0), tiny_tokenizer, seed=4)
    ids = torch.as_tensor(blocks_with_specials(tiny_tokenizer))
    out = batcher(ids, block_ids=range(len(ids)))
    replaced = out["input_ids"][out["labels"] != -100]
    assert not torch.isin(replaced, torch.tensor(tiny_tokenizer.all_special_ids)).any()
    assert len(torch.unique(replaced)) == len(tiny_tokenizer) - len(
        set(tiny_tokenizer.all_special_ids)
    )  # the whole non-special vocabulary (sentinels are special)


def test_dynamic_masks_change_and_static_masks_stay(tiny_tokenizer):
    ids = torch.as_tensor(blocks_with_specials(tiny_tokenizer, n=16))
    block_ids = np.arange(16)
    dyn = MLMBatcher(masking(mode="dynamic"), tiny_tokenizer, seed=5)
    a = dyn(ids, block_ids, epochs=0)["labels"] != -100
    b = dyn(ids, block_ids, epochs=1)["labels"] != -100
    assert (a != b).float().mean() > 0.1  # a new pass over the data, new masks
    assert torch.equal(a, dyn(ids, block_ids, epochs=0)["labels"] != -100)  # seeded: reproducible
    # a block's masks don't depend on which batch (or process) it lands in
    assert torch.equal(
        dyn(ids[[3, 1]], block_ids[[3, 1]], epochs=0)["input_ids"], dyn(ids, block_ids)["input_ids"][[3, 1]]
    )

    static = MLMBatcher(masking(mode="static"), tiny_tokenizer, seed=5)
    s1 = static(ids, block_ids, epochs=0)
    s2 = static(ids[[3, 1]], block_ids[[3, 1]], epochs=4)  # other batch, order and epoch
    assert torch.equal(s1["input_ids"][[3, 1]], s2["input_ids"])
    copies = MLMBatcher(masking(mode="static", static_copies=3), tiny_tokenizer, seed=5)
    e0, e1, e3 = (copies(ids, block_ids, epochs=e)["labels"] != -100 for e in (0, 1, 3))
    assert not torch.equal(e0, e1) and torch.equal(e0, e3)


def test_exact_count_select_picks_lowest_scores():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.2, 0.05]])
    eligible = torch.tensor([[True, True, True, True, False]])
    sel = exact_count_select(scores, eligible, rate=0.5)
    assert sel.tolist() == [[False, True, False, True, False]]


def test_corrupt_labels_hold_originals():
    ids = torch.arange(10, 30).reshape(2, 10)
    selected = torch.zeros_like(ids, dtype=torch.bool)
    selected[0, 2] = selected[1, 7] = True
    g = torch.Generator().manual_seed(0)
    out, labels = corrupt(ids, selected, 4, torch.arange(5, 50), 1.0, 0.0, g)
    assert out[0, 2] == 4 and out[1, 7] == 4
    assert labels[0, 2] == ids[0, 2] and (labels[~selected] == -100).all()
