"""Generation with a masked LM: every strategy's schedule, given text, constraints, fusion, the
masked-diffusion training rates, and the `generate` command's bad-input matrix."""

import json
import math
import random
import sys

import numpy as np
import pytest
import torch

from masklab.generate import iterative_unmask
from masklab.generate.predictors import CausalPredictor, FusedPredictor, MaskedPredictor
from masklab.generate.sampling import truncate
from masklab.generate.template import Gap, continuation_template, given_text_intact, layout, parse_template, render

STRATEGIES = [
    ("mask-predict", {}),
    ("gibbs", {"k": 2}),
    ("left-to-right", {}),
    ("random-order", {}),
    ("maskgit", {}),
    ("diffusion", {}),
    ("diffusion", {"remasking": "random"}),
    ("diffusion", {"block_length": 4}),
]


def tiny_mlm(vocab: int, seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    return BertForMaskedLM(
        BertConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).eval()


def tiny_clm(vocab: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            initializer_range=0.5,
        )
    ).eval()


def rows_with_gaps(B=6, T=24, vocab=100, seed=0):
    """Random rows: [CLS] context... [SEP], an editable stretch of different length per row."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    editable = torch.zeros(B, T, dtype=torch.bool)
    for b in range(B):
        editable[b, 2 : 2 + 8 + b] = True
    return ids, editable


FORBID = torch.zeros(100, dtype=torch.bool)
FORBID[:5] = True


def unmask(strategy, settings, steps, ids, editable, model=None, seed=0, **kw):
    model = model or tiny_mlm(100)
    return iterative_unmask(
        MaskedPredictor(model),
        ids,
        editable,
        strategy,
        steps,
        generator=torch.Generator().manual_seed(seed),
        mask_token_id=4,
        settings=settings,
        forbidden=FORBID,
        record=True,
        **kw,
    )


@pytest.mark.parametrize("strategy,settings", STRATEGIES)
def test_given_tokens_never_change_and_every_slot_is_filled(strategy, settings):
    ids, editable = rows_with_gaps()
    result = unmask(strategy, settings, 8, ids, editable)
    assert torch.equal(result.ids[~editable], ids[~editable])
    assert (result.ids[editable] >= 5).all()  # filled, and never with a special token
    for step in result.trajectory:
        assert torch.equal(step[~editable], ids[~editable])


def masks_after(result, editable):
    """(steps, B): editable positions still showing [MASK] after each step."""
    return torch.stack([((step == 4) & editable).sum(1) for step in result.trajectory])


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_mask_predict_keeps_n_times_remaining_fraction_masked(steps):
    ids, editable = rows_with_gaps()
    n = editable.sum(1)
    left = masks_after(unmask("mask-predict", {}, steps, ids, editable), editable)
    for s in range(steps):
        assert torch.equal(left[s], n * (steps - s - 1) // steps)


def test_left_to_right_commits_one_slot_per_step_leftmost_first():
    ids, editable = rows_with_gaps(B=1)
    n = int(editable.sum())
    result = unmask("left-to-right", {}, 0, ids, editable)
    assert result.steps == n and torch.equal(result.committed[:, 0], torch.ones(n, dtype=torch.long))
    positions = editable[0].nonzero().squeeze(1)
    for s, step in enumerate(result.trajectory):
        shown = step[0, positions] == 4
        assert not shown[: s + 1].any() and shown[s + 1 :].all()


def test_random_order_commits_one_slot_per_step_in_varying_order():
    ids, editable = rows_with_gaps(B=1)
    firsts = set()
    for seed in range(8):
        result = unmask("random-order", {}, 0, ids, editable, seed=seed)
        assert (result.committed[:, 0] == 1).all()
        first = ((result.trajectory[0][0] != 4) & editable[0]).nonzero().item()
        firsts.add(first)
    assert len(firsts) >= 3  # leftmost-first would always commit the same slot


@pytest.mark.parametrize("steps", [4, 12])
def test_maskgit_follows_the_cosine_schedule(steps):
    ids, editable = rows_with_gaps()
    n = editable.sum(1)
    left = masks_after(unmask("maskgit", {}, steps, ids, editable), editable)
    before = n.clone()
    for s in range(steps):
        planned = torch.minimum(
            torch.floor(n * math.cos(math.pi / 2 * (s + 1) / steps)).long(), (before - 1).clamp(min=0)
        )
        assert torch.equal(left[s], planned)
        before = left[s]
    assert (left[-1] == 0).all()


def test_low_confidence_diffusion_reveals_an_even_share_per_step():
    ids, editable = rows_with_gaps()
    n = editable.sum(1)
    steps = 5
    result = unmask("diffusion", {}, steps, ids, editable)
    left = n.clone()
    for s in range(steps):
        planned = left - left * (steps - s - 1) // (steps - s)
        assert torch.equal(result.committed[s], planned)
        left -= planned


def test_ancestral_diffusion_reveals_binomially_with_mean_n_over_t():
    """MDLM's sampler reveals each masked slot at step t with probability 1/(T - t): the count revealed at
    every step has mean n/T. 4000 rows of 16 slots: the bound is > 6 standard errors."""
    B, n, steps = 4000, 16, 4
    ids = torch.full((B, n + 2), 7)
    editable = torch.zeros_like(ids, dtype=torch.bool)
    editable[:, 1:-1] = True

    class Flat:  # uniform predictions: the schedule alone decides what is revealed
        def __call__(self, ids, mask, rows, positions):
            return torch.full((len(positions), 100), -math.log(100.0))

    result = iterative_unmask(
        Flat(),
        ids,
        editable,
        "diffusion",
        steps,
        generator=torch.Generator().manual_seed(0),
        mask_token_id=4,
        settings={"remasking": "random"},
        forbidden=FORBID,
    )
    assert torch.equal(result.committed.sum(0), torch.full((B,), n))
    means = result.committed.float().mean(1)
    assert torch.allclose(means, torch.full((steps,), n / steps), atol=0.12), means
    assert result.committed.float().std(1)[0] > 1.0  # random counts, not an even split


def test_block_diffusion_finishes_each_block_before_the_next():
    ids, editable = rows_with_gaps(B=1)
    slots = editable[0].nonzero().squeeze(1)  # 8 slots: blocks of 4
    result = unmask("diffusion", {"block_length": 4}, 4, ids, editable)
    for step in result.trajectory[:2]:  # the first block's two steps
        assert (step[0, slots[4:]] == 4).all()
    assert (result.trajectory[1][0, slots[:4]] != 4).all()


def test_gibbs_fills_everything_then_resamples_k_slots_per_step():
    ids, editable = rows_with_gaps()
    n = editable.sum(1)
    result = unmask("gibbs", {"k": 3}, 6, ids, editable)
    assert torch.equal(result.predicted[0], n)
    assert (result.predicted[1:] == 3).all()
    assert (masks_after(result, editable)[-1] == 0).all()


def test_bad_steps_and_settings_are_user_errors():
    from masklab.errors import UserError

    ids, editable = rows_with_gaps()
    with pytest.raises(UserError, match="steps must be >= 1"):
        unmask("mask-predict", {}, -1, ids, editable)
    with pytest.raises(UserError, match="at least that many steps"):
        unmask("diffusion", {"block_length": 2}, 2, ids, editable)
    with pytest.raises(UserError, match="unknown unmask"):
        unmask("beam", {}, 4, ids, editable)


def test_top_p_keeps_the_smallest_set_reaching_p():
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(truncate(logp, 0, 0.75))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(truncate(logp, 0, 0.1)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(truncate(logp, 3, 1.0)).sum() == 3


def memorising_mlm(tokenizer, sentence: str, steps: int = 400):
    """A tiny BERT trained until it knows one sentence, at masking rates drawn in (0, 1] (masked diffusion)."""
    model = tiny_mlm(len(tokenizer))
    model.train()
    ids = torch.tensor([tokenizer(sentence)["input_ids"]]).repeat(32, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    inner = torch.zeros_like(ids, dtype=torch.bool)
    inner[:, 1:-1] = True
    for _ in range(steps):
        rate = torch.rand(32, 1, generator=g)
        chosen = (torch.rand(ids.shape, generator=g) < rate) & inner
        chosen[:, 1] |= ~chosen.any(1)
        loss = model(
            input_ids=ids.masked_fill(chosen, tokenizer.mask_token_id), labels=ids.masked_fill(~chosen, -100)
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_greedy_mask_predict_reproduces_a_memorised_sentence(tiny_tokenizer):
    sentence = "w3 w17 w42 w8 w8 w51 w29 w3 w11 w36"
    model = memorising_mlm(tiny_tokenizer, sentence)
    ids = torch.tensor([tiny_tokenizer(sentence)["input_ids"]])
    editable = torch.zeros_like(ids, dtype=torch.bool)
    editable[0, 1:-1] = True
    result = iterative_unmask(
        MaskedPredictor(model),
        ids,
        editable,
        "mask-predict",
        10,
        temperature=0.0,
        mask_token_id=tiny_tokenizer.mask_token_id,
    )
    assert torch.equal(result.ids, ids)


def test_fusion_weight_zero_is_the_masked_lm_and_one_is_the_causal_lm(tiny_tokenizer):
    V = len(tiny_tokenizer)
    mlm, clm = tiny_mlm(V), tiny_clm(V)
    prompt = tiny_tokenizer("w1 w2 w3", add_special_tokens=False)["input_ids"]
    L = 8
    ids = torch.tensor(
        [[tiny_tokenizer.cls_token_id, *prompt, *[tiny_tokenizer.mask_token_id] * L, tiny_tokenizer.sep_token_id]]
    )
    editable = torch.zeros_like(ids, dtype=torch.bool)
    editable[0, 1 + len(prompt) : -1] = True
    forbidden = torch.zeros(V, dtype=torch.bool)
    forbidden[sorted(set(tiny_tokenizer.all_special_ids))] = True

    def run(predictor, strategy, temperature=1.0):
        return iterative_unmask(
            predictor,
            ids,
            editable,
            strategy,
            0,
            temperature,
            generator=torch.Generator().manual_seed(3),
            mask_token_id=tiny_tokenizer.mask_token_id,
            forbidden=forbidden,
        ).ids

    alone, fused = (
        run(MaskedPredictor(mlm), "mask-predict"),
        run(FusedPredictor(MaskedPredictor(mlm), CausalPredictor(clm), 0.0), "mask-predict"),
    )
    assert torch.equal(alone, fused)
    greedy = run(FusedPredictor(MaskedPredictor(mlm), CausalPredictor(clm), 1.0), "left-to-right", temperature=0.0)
    source = ids[:, : 1 + len(prompt)]
    reference = clm.generate(
        input_ids=source,
        attention_mask=torch.ones_like(source),
        do_sample=False,
        max_new_tokens=L,
        min_new_tokens=L,
        suppress_tokens=sorted(set(tiny_tokenizer.all_special_ids)),
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    assert greedy[0, 1 + len(prompt) : -1].tolist() == reference[0, source.shape[1] :].tolist()
    mixed = run(FusedPredictor(MaskedPredictor(mlm), CausalPredictor(clm), 0.5), "mask-predict")
    assert not torch.equal(mixed, alone)


def test_templates_keep_the_given_text_byte_for_byte(tiny_tokenizer):
    parts = parse_template("W1  w2.[MASK]*3 w5\t[MASK]*2-4 end.")
    assert [p for p in parts if isinstance(p, Gap)] == [Gap(3, 3), Gap(2, 4)]
    rng = random.Random(0)
    lengths = set()
    for _ in range(30):
        row = layout(parts, tiny_tokenizer, rng)
        filled = [t if not e else tiny_tokenizer.convert_tokens_to_ids("w7") for t, e in zip(row.ids, row.editable)]
        text, gaps = render(row, filled, tiny_tokenizer)
        assert text.startswith("W1  w2.") and "w5\t" in text and text.endswith(" end.")
        assert given_text_intact(row, text, gaps) and len(gaps) == 2
        lengths.add(sum(row.editable) - 3)
    assert lengths == {2, 3, 4}
    assert not given_text_intact(row, text.replace("w5", "w6"), gaps)


def test_continuation_template_places_required_words(tiny_tokenizer):
    from masklab.errors import UserError

    assert continuation_template("w1 w2", 6, {2: "w9"}, tiny_tokenizer) == "w1 w2 [MASK]*2 w9 [MASK]*3"
    with pytest.raises(UserError, match="shorter than the required words"):
        continuation_template("", 3, {3: "w9"}, tiny_tokenizer)


@pytest.fixture(scope="module")
def generation_runs(tiny_tokenizer, tiny_checkpoint, tmp_path_factory):
    """The tiny BERT checkpoint, a causal LM with the same tokenizer, and one with another tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("fusion")
    same = root / "clm"
    tiny_clm(len(tiny_tokenizer)).save_pretrained(same)
    tiny_tokenizer.save_pretrained(same)
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"])}
    other = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    foreign = root / "foreign"
    tiny_clm(len(vocab)).save_pretrained(foreign)
    PreTrainedTokenizerFast(
        tokenizer_object=other,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(foreign)
    return {"mlm": tiny_checkpoint, "clm": same, "foreign": foreign}


def test_constraints_hold_in_every_sample(generation_runs, tiny_tokenizer):
    from masklab.generate.constraints import continuation_pieces
    from masklab.generate.run import GenerateConfig, generate

    banned = ["w3", "w10", "w20"]
    report = generate(
        generation_runs["mlm"], GenerateConfig(n=24, length=12, banned=banned, seed=1, top_p=1.0), show_progress=False
    )
    assert len(report["samples"]) == 24
    for sample in report["samples"]:
        assert not set(sample["text"].split()) & set(banned), sample["text"]
    allowed = ["w1", "w2", "w5", "w7"]
    report = generate(
        generation_runs["mlm"],
        GenerateConfig(n=16, length=10, allowed=allowed, strategy="maskgit"),
        show_progress=False,
    )
    for sample in report["samples"]:
        assert set(sample["text"].split()) <= set(allowed), sample["text"]
    # a gap after a space starts a word: its first token is never a continuation piece
    continuation = continuation_pieces(tiny_tokenizer)
    report = generate(
        generation_runs["mlm"],
        GenerateConfig(n=16, top_p=1.0, temperature=2.0),
        texts=["w1 w2 [MASK]*4 w3"],
        show_progress=False,
    )
    for sample in report["samples"]:
        first = tiny_tokenizer(sample["gaps"][0], add_special_tokens=False)["input_ids"][0]
        assert not continuation[first] and sample["given_text_intact"]
        assert sample["text"].startswith("w1 w2 ") and sample["text"].endswith(" w3")


def test_samples_are_reproducible_from_the_seed(generation_runs):
    from masklab.generate.run import GenerateConfig, generate

    cfg = GenerateConfig(n=4, length=8, seed=5, strategy="gibbs", steps=10)
    first = [s["text"] for s in generate(generation_runs["mlm"], cfg, show_progress=False)["samples"]]
    again = [s["text"] for s in generate(generation_runs["mlm"], cfg, show_progress=False)["samples"]]
    other = [
        s["text"]
        for s in generate(
            generation_runs["mlm"],
            GenerateConfig(n=4, length=8, seed=6, strategy="gibbs", steps=10),
            show_progress=False,
        )["samples"]
    ]
    assert first == again and first != other


def test_quality_figures():
    from masklab.generate.quality import self_bleu, unigram_entropy

    assert self_bleu(["the cat sat on the mat"] * 3) == pytest.approx(100.0)
    assert self_bleu(["the cat sat on the mat", "a dog ran in a park", "we shall fight on beaches"]) < 20
    assert unigram_entropy([[1, 2, 3, 4]]) == pytest.approx(math.log(4))
    assert unigram_entropy([[1, 1, 1, 1]]) == 0.0


def test_generate_command_json_with_steps_and_evaluation(generation_runs, tmp_path):
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "masklab.cli",
            "generate",
            str(generation_runs["mlm"]),
            "--text",
            "w1 [MASK] w2 [MASK]*2-3 .",
            "--n",
            "3",
            "--steps",
            "4",
            "--show-steps",
            "--json",
            "--evaluate",
            "--judge",
            str(generation_runs["clm"]),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert len(report["samples"]) == 3 and report["steps"] == 4
    for sample in report["samples"]:
        assert len(sample["steps"]) == 4 and "[MASK]" in sample["steps"][0] and "[MASK]" not in sample["steps"][-1]
        assert sample["steps"][-1] == sample["text"] and sample["given_text_intact"]
    ev = report["evaluation"]
    assert ev["given_text_intact"] == 1.0 and ev["judge_perplexity"] > 1.0 and 0 <= ev["distinct_2"] <= 1


def test_poe_and_rerank_fusion_run(generation_runs):
    from masklab.generate.run import GenerateConfig, generate

    for mode in ("poe", "rerank"):
        report = generate(
            generation_runs["mlm"],
            GenerateConfig(n=2, length=6, fusion=str(generation_runs["clm"]), fusion_mode=mode, candidates=4),
            prompts=["w1 w2"],
            show_progress=False,
        )
        assert len(report["samples"]) == 2
        assert all(s["text"].startswith("w1 w2 ") and len(s["text"].split()) >= 4 for s in report["samples"])
    scores = [s["pseudo_log_likelihood"] for s in report["samples"]]
    assert scores == sorted(scores, reverse=True)  # fusion_weight 0.5 of comparable sums: best first


def bad_generation(runs) -> dict:
    mlm = str(runs["mlm"])
    return {
        "no mask": (["generate", mlm, "--text", "w1 w2 w3"], "has no [MASK]"),
        "steps below 1": (["generate", mlm, "--steps", "0"], "--steps must be >= 1"),
        "foreign fusion": (["generate", mlm, "--fusion", str(runs["foreign"])], "another tokenizer"),
        "not an mlm": (["generate", str(runs["clm"])], "needs a masked LM"),
        "required longer than length": (
            ["generate", mlm, "--length", "3", "--require", "5:w9"],
            "shorter than the required",
        ),
        "required and banned": (["generate", mlm, "--require", "1:w9", "--ban", "w9"], "both required"),
        "required outside vocabulary": (["generate", mlm, "--require", "1:ژ"], "outside the model's vocabulary"),
        "bad gap": (["generate", mlm, "--text", "w1 [MASK]*4-2"], "not a gap length"),
        "bad strategy": (["generate", mlm, "--strategy", "beam"], "unknown strategy"),
        "bad setting": (["generate", mlm, "--strategy", "gibbs", "--setting", "k=0"], "gibbs needs k >= 1"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no mask",
        "steps below 1",
        "foreign fusion",
        "not an mlm",
        "required longer than length",
        "required and banned",
        "required outside vocabulary",
        "bad gap",
        "bad strategy",
        "bad setting",
    ],
)
def test_generate_bad_input_is_one_clear_line(case, generation_runs, monkeypatch, capsys):
    from masklab import cli

    argv, expected = bad_generation(generation_runs)[case]
    monkeypatch.setattr(sys, "argv", ["masklab", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and expected in err and err.count("\n") == 1, err


# ---- masked diffusion training ------------------------------------------------------------------------------


def diffusion_batch(tokenizer, schedule: str, n: int = 4000, t: int = 64, strategy: str = "random"):
    from masklab.config import build_config
    from masklab.masking import MLMBatcher

    cfg = build_config({}, [f"masking.diffusion.schedule={schedule}", f"masking.strategy={strategy}"]).masking
    g = np.random.default_rng(0)
    blocks = g.integers(5, tokenizer.vocab_size, size=(n, t))
    blocks[:, 0] = tokenizer.cls_token_id
    features = {"words": (g.random((n, t)) < 0.7).astype(np.int8)}
    return cfg, MLMBatcher(cfg, tokenizer, seed=0).mask(blocks, np.arange(n), 0, features)


@pytest.mark.parametrize("strategy", ["random", "whole_word", "span"])
def test_diffusion_rates_are_uniform_and_realised_per_block(tiny_tokenizer, strategy):
    """Linear schedule: rate = t ~ U(eps, 1]. Kolmogorov-Smirnov distance of 4000 draws from the uniform
    CDF: the 0.1% critical value is 1.95/sqrt(n) = 0.031. Each block masks (close to) its drawn share."""
    cfg, batch = diffusion_batch(tiny_tokenizer, "linear", strategy=strategy)
    rates = np.sort(batch.rates)
    eps = cfg.diffusion.epsilon
    cdf = (rates - eps) / (1 - eps)
    ks = np.max(np.abs(cdf - np.arange(1, len(rates) + 1) / len(rates)))
    assert ks < 0.031 and rates.min() > eps and rates.max() <= 1.0
    realised = (batch.labels != -100).sum(1).numpy() / batch.eligible.sum(1).numpy()
    tolerance = 0.02 if strategy == "random" else 0.2  # whole units overshoot a budget by at most a unit
    assert np.mean(np.abs(realised - batch.rates)) < tolerance
    assert (batch.input_ids[batch.labels != -100] == tiny_tokenizer.mask_token_id).all()  # absorbing state: [MASK] only


def test_diffusion_loss_weights_follow_the_elbo(tiny_tokenizer):
    """Linear: each block's masked tokens share a weight of 1/B in total (mean cross-entropy per block);
    cosine: the block's weight is m'(t) = pi/2 sin(pi t/2), whose mean over t in (0, 1] is 1."""
    cfg, batch = diffusion_batch(tiny_tokenizer, "linear")
    per_block = batch.loss_weight.sum(1).numpy()
    assert np.allclose(per_block, 1 / len(per_block), rtol=1e-5)
    cfg, batch = diffusion_batch(tiny_tokenizer, "cosine")
    t = 2 / math.pi * np.arccos(1 - batch.rates)
    assert np.allclose(batch.loss_weight.sum(1).numpy() * len(t), math.pi / 2 * np.sin(math.pi / 2 * t), rtol=1e-4)
    assert abs(batch.loss_weight.sum().item() - 1.0) < 0.03
    assert abs(batch.rates.mean() - (1 - 2 / math.pi)) < 0.015  # E[1 - cos(pi t / 2)], 4000 draws, sd 0.0045


def test_diffusion_evaluation_uses_the_fixed_rate_and_no_weights(tiny_tokenizer):
    from masklab.config import build_config
    from masklab.masking import MLMBatcher

    cfg = build_config({}, ["masking.diffusion.schedule=linear"]).masking
    batcher = MLMBatcher(cfg, tiny_tokenizer, seed=0)
    assert batcher.rate_at(0.5) is None
    blocks = np.full((64, 101), 9)
    blocks[:, 0] = tiny_tokenizer.cls_token_id
    fixed = batcher(blocks, np.arange(64), rate=cfg.rate)
    assert "loss_weight" not in fixed and ((fixed["labels"] != -100).sum(1) == 15).all()


def test_diffusion_config_checks():
    from masklab.config import build_config
    from masklab.errors import UserError

    cfg = build_config({}, ["masking.diffusion.schedule=linear"]).masking
    assert (cfg.mask_token_fraction, cfg.random_token_fraction) == (1.0, 0.0)
    kept = build_config({}, ["masking.diffusion.schedule=linear", "masking.random_token_fraction=0.05"]).masking
    assert kept.random_token_fraction == 0.05
    with pytest.raises(UserError, match="cannot follow a rate schedule"):
        build_config({}, ["masking.diffusion.schedule=linear", "masking.schedule=linear", "masking.rate_start=0.4"])
    with pytest.raises(UserError, match="epsilon"):
        build_config({}, ["masking.diffusion.schedule=linear", "masking.diffusion.epsilon=0"])


def test_a_diffusion_trained_mlm_writes_the_corpus_pattern_and_compare_shows_it(corpus_file, tmp_path):
    """Pretrain with masked diffusion on the repeated-phrase corpus (every document repeats two words), then
    fill most of a document from the phrase given twice: it must continue, alternating. The figures land in
    evaluation.json and in `masklab compare`."""
    from conftest import tiny_overrides
    from masklab.config import build_config
    from masklab.generate.run import GenerateConfig, generate
    from masklab.pretrain.run import pretrain
    from masklab.report.compare import compare_runs

    out = tmp_path / "diffusion"
    summary = pretrain(
        build_config(
            {},
            tiny_overrides(
                corpus_file,
                train__max_steps=600,
                train__eval_every=0,
                train__save_every=0,
                model__hidden_size=64,
                model__intermediate_size=128,
                masking__diffusion__schedule="linear",
            ),
        ),
        out,
        show_progress=False,
    )
    assert summary["masked_accuracy"] > 0.6  # scored at the fixed 15%, like any MLM (measured: 1.0)
    pairs = [("w10", "w11"), ("w3", "w42"), ("w27", "w8"), ("w51", "w19"), ("w33", "w5"), ("w14", "w56")]
    report = generate(
        out,
        GenerateConfig(temperature=0.0, strategy="left-to-right"),
        texts=[f"{a} {b} {a} {b} [MASK]*8 ." for a, b in pairs],
        evaluate=True,
        show_progress=False,
    )
    continued = 0
    for (a, b), sample in zip(pairs, report["samples"]):
        words = sample["text"].split()
        assert words[:4] == [a, b, a, b] and words[-1] == ".", words
        continued += sum(w == (a, b)[i % 2] for i, w in enumerate(words[4:-1]))
    # 70% of the written words continue the alternation: one word repeated scores 1/2, chance 1/60
    # (measured over train seeds 0 and 3: 0.81 and 1.0).
    assert continued / (8 * len(pairs)) >= 0.7, continued
    generate(
        out,
        GenerateConfig(strategy="mask-predict", steps=8),
        texts=["w10 w11 [MASK]*10 ."],
        evaluate=True,
        show_progress=False,
    )
    saved = json.loads((out / "evaluation.json").read_text())["generation"]
    assert {"left-to-right@8", "mask-predict@8"} <= set(saved) and saved["mask-predict@8"]["given_text_intact"] == 1.0
    compare_runs([out], tmp_path / "report")
    page = (tmp_path / "report" / "compare.md").read_text()
    assert "## Generation" in page and "mask-predict@8" in page


@pytest.mark.parametrize("top_k,top_p", [(0, 0.9), (0, 0.5), (20, 0.8), (5, 1.0)])
def test_cpu_candidate_draws_stay_in_the_exact_nucleus(top_k, top_p):
    """The CPU sampler draws among top candidates, with tiers and a dense fallback; every draw must lie in
    the nucleus the dense reference computes, rows with a peaked and with a flat distribution alike."""
    from masklab.generate.sampling import Sampling, _candidates

    g = torch.Generator().manual_seed(0)
    scores = torch.cat(
        [torch.randn(50, 6000, generator=g) * 6, torch.randn(50, 6000, generator=g) * 0.1]
    )  # peaked, flat
    allowed = torch.isfinite(truncate(scores, top_k, top_p))
    seen = torch.zeros_like(allowed)
    for _ in range(40):
        tokens = _candidates(scores, Sampling(1.0, top_k, top_p), g, tiers=(64, 512))
        assert allowed.gather(1, tokens[:, None]).all()
        seen.scatter_(1, tokens[:, None], True)
    peaked = allowed[:50].sum(1) <= 10
    assert (seen[:50][peaked] == allowed[:50][peaked]).float().mean() > 0.9  # small nuclei get fully covered


@pytest.mark.parametrize("strategy", ["mask-predict", "maskgit", "left-to-right", "diffusion"])
def test_dense_gpu_path_and_sparse_cpu_path_agree_when_greedy(strategy):
    """The GPU path predicts every slot every step, the CPU path only the masked ones: same schedule, so at
    temperature 0 the same text."""
    ids, editable = rows_with_gaps()
    model = tiny_mlm(100)
    runs = [
        iterative_unmask(
            MaskedPredictor(model),
            ids,
            editable,
            strategy,
            6,
            temperature=0.0,
            generator=torch.Generator().manual_seed(1),
            mask_token_id=4,
            forbidden=FORBID,
            sparse=sparse,
        )
        for sparse in (True, False)
    ]
    assert torch.equal(runs[0].ids, runs[1].ids) and torch.equal(runs[0].committed, runs[1].committed)
