"""ELECTRA (train.objective=electra): the loss pieces against a hand computation, exact resume, checkpoints in plain
transformers and `masklab finetune`, learning on the repeated-phrase corpus, minimal pairs by both scores, bad input."""

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import WORDS, tiny_overrides
from masklab.config import MaskingConfig, build_config
from masklab.errors import UserError
from masklab.evaluate.scoring import SentenceScorer
from masklab.models.electra import ElectraPair, build_generator
from masklab.objectives.electra import SAMPLE, ElectraObjective, SampledBatcher, sample_tokens
from masklab.pretrain.run import pretrain


def run(corpus, out, steps, halt=None, resume=False, **extra):
    settings = {
        "train__objective": "electra",
        "train__max_steps": steps,
        "train__save_every": 4,
        "train__eval_every": 0,
        **extra,
    }
    return pretrain(
        build_config({}, tiny_overrides(corpus, **settings)), out, resume=resume, halt_at_step=halt, show_progress=False
    )


def test_sampling_follows_the_generator_distribution():
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    n = 20000
    uniform = torch.rand(n, generator=torch.Generator().manual_seed(0))
    drawn = sample_tokens(probs.log().expand(n, 4), uniform)
    counts = torch.bincount(drawn, minlength=4).double() / n
    assert counts[3] == 0  # a token of probability 0 is never drawn
    for p, share in zip(probs[:3].tolist(), counts[:3].tolist()):
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_loss_is_generator_mlm_plus_weighted_rtd_by_hand(tiny_tokenizer, tiny_model):
    discriminator = tiny_model(tiny_tokenizer, "electra")
    generator = build_generator(discriminator, 0.5, seed=0).eval()
    assert generator.get_input_embeddings() is discriminator.get_input_embeddings()  # one shared table
    assert generator.get_output_embeddings().weight is discriminator.get_input_embeddings().weight
    objective = ElectraObjective(ElectraPair(generator, discriminator), rtd_weight=7.0)
    text = " ".join(WORDS[3:5] * 15)
    ids = torch.tensor([tiny_tokenizer(text)["input_ids"][:32]] * 4)
    batch = SampledBatcher(MaskingConfig(rate=0.3), tiny_tokenizer, seed=0)(ids, [0, 1, 2, 3])
    with torch.no_grad():
        out = objective(**batch)
        selected = batch["labels"] != -100
        targets = batch["labels"][selected]
        logits = generator(input_ids=batch["input_ids"]).logits[selected]  # the plain HF forward, (M, V)
        mlm = -torch.log_softmax(logits.float(), -1)[torch.arange(len(targets)), targets].mean()
        # inverse CDF by hand: the first token whose cumulative probability reaches u x the total
        cdf = torch.softmax(logits.float(), -1).cumsum(-1)
        drawn = [int((row >= u * row[-1]).nonzero()[0]) for row, u in zip(cdf, batch["uniform"][selected])]
        original = torch.where(selected, batch["labels"], batch["input_ids"])
        corrupted = original.clone()
        corrupted[selected] = torch.tensor(drawn)
        replaced = (corrupted != original).float()  # a draw equal to the original token counts as original
        d = discriminator(input_ids=corrupted).logits  # (B, T)
        rtd = -(replaced * F.logsigmoid(d) + (1 - replaced) * F.logsigmoid(-d)).mean()
    assert 0 < replaced.sum() < selected.sum()  # some draws replaced, some happened to hit the original
    torch.testing.assert_close(out["mlm_loss"], mlm)
    torch.testing.assert_close(out["rtd_loss"], rtd)
    torch.testing.assert_close(out["loss"], mlm + 7.0 * rtd)
    assert torch.equal(out["replaced"], replaced.bool())
    again = SampledBatcher(MaskingConfig(rate=0.3), tiny_tokenizer, seed=0)(ids, [0, 1, 2, 3])
    assert torch.equal(again["uniform"], batch["uniform"])  # the draws' numbers: a pure function of seed and block
    other = SampledBatcher(MaskingConfig(rate=0.3), tiny_tokenizer, seed=0).random([0], 1, 32).uniform(SAMPLE)
    assert not torch.equal(torch.from_numpy(other).float(), batch["uniform"][:1])  # the next pass draws afresh


def test_sentence_scores_use_the_generator_for_pll_and_the_discriminator_for_rtd(tiny_tokenizer, tiny_model):
    discriminator = tiny_model(tiny_tokenizer, "electra")
    generator = build_generator(discriminator, 0.5, seed=0).eval()
    pair = ElectraPair(generator, discriminator)
    texts = ["w1 w2 w1 w2 w1", "w7 w3 w9"]
    rtd = SentenceScorer(pair, tiny_tokenizer).scores("rtd", texts)
    for text, score in zip(texts, rtd):
        ids = tiny_tokenizer(text, return_tensors="pt")["input_ids"]  # [CLS] ... [SEP]
        with torch.no_grad():
            d = discriminator(input_ids=ids).logits[0, 1:-1]
        assert score == pytest.approx(float(F.logsigmoid(-d).sum()), abs=1e-4)  # sum of log P(original)
    pll = SentenceScorer(pair, tiny_tokenizer).scores("pll", texts)
    assert pll == pytest.approx(SentenceScorer(generator, tiny_tokenizer).scores("pll", texts), abs=1e-4)


def test_resume_is_exact_for_both_networks(corpus_file, tmp_path):
    from safetensors.torch import load_file

    straight = run(corpus_file, tmp_path / "straight", 8)
    run(corpus_file, tmp_path / "split", 8, halt=4)
    resumed = run(corpus_file, tmp_path / "split", 8, resume=True)
    for directory in ("checkpoint", "generator"):
        a = load_file(str(tmp_path / "straight" / directory / "model.safetensors"))
        b = load_file(str(tmp_path / "split" / directory / "model.safetensors"))
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=f"{directory}: {name}")
    assert resumed["final_train_loss"] == straight["final_train_loss"]
    lines = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert any("gen_loss" in line and "rtd_loss" in line for line in lines)  # both halves of the loss are logged


@pytest.fixture(scope="module")
def trained(corpus_file, tmp_path_factory):
    """One short electra run that the tests reading a finished run share."""
    root = tmp_path_factory.mktemp("electra")
    # measured at these settings (seeds 0, 1, 2): discriminator AUC 0.67, 0.74, 0.64; at the generator's default width
    # (0.25 x 32) and lr 3e-3 it is noisier (0.73, 0.60, 0.66). A post-LN encoder this small learns to compare a
    # token with its neighbours slowly: the AUC climbs past 0.8 only after ~800 steps at width 64.
    summary = run(
        corpus_file,
        root / "run",
        400,
        train__save_every=0,
        train__lr=1e-3,
        electra__generator_fraction=0.5,
        data__val_fraction=0.2,
        data__cache_dir=str(root / "cache"),
    )
    from transformers import AutoConfig

    return root / "run", {
        **summary,
        "vocab_size": AutoConfig.from_pretrained(str(root / "run" / "checkpoint")).vocab_size,
    }


def test_a_short_run_learns_the_repeated_phrases(trained):
    _, s = trained
    # replaced-token detection: above chance (AUC 0.5) by 3 standard errors (Hanley & McNeil 1982)
    n_pos = s["replaced_fraction"] * s["rtd_tokens"]
    n_neg = s["rtd_tokens"] - n_pos
    auc = s["rtd_auc"]
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = math.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg))
    assert auc > 0.5 + 3 * se, s
    # the generator: below the masked loss of a uniform guess over the vocabulary, ln V, by 3 standard errors (a
    # per-token loss spread of at most 2 nats); a generator this narrow learns which words the corpus uses long before
    # it learns to copy them (measured: masked loss 4.27-4.28, masked accuracy under 0.01)
    assert s["masked_loss"] < math.log(s["vocab_size"]) - 3 * 2 / math.sqrt(s["masked_tokens"]), s


def test_checkpoints_load_in_plain_transformers_and_finetune(
    trained, separable_task, finetune_config, run_seed, tmp_path
):
    from transformers import AutoModel, AutoModelForPreTraining, pipeline

    out, summary = trained
    encoder = AutoModel.from_pretrained(str(out / "checkpoint"))
    assert type(encoder).__name__ == "ElectraModel"
    discriminator = AutoModelForPreTraining.from_pretrained(str(out / "checkpoint"))
    assert type(discriminator).__name__ == "ElectraForPreTraining"
    assert summary["parameters"] == sum(p.numel() for p in discriminator.parameters())  # what a run counts
    fill = pipeline("fill-mask", model=str(out / "generator"))
    proposals = fill("w3 w4 w3 w4 [MASK] w4 w3 w4", top_k=3)
    assert len(proposals) == 3 and all(p["token_str"] for p in proposals)
    summary = run_seed(finetune_config(str(separable_task), str(out), max_steps=20, mode="full"), tmp_path)
    assert summary["steps"] == 20 and math.isfinite(summary["test_accuracy"])


def test_minimal_pairs_are_scored_by_the_generator_and_the_discriminator(trained, tmp_path):
    from masklab.evaluate.run import evaluate_checkpoint

    out, _ = trained
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {
            "sentence_good": " ".join([a, b] * 4),
            "sentence_bad": " ".join([a, b] * 2 + [b, a, a, b]),
            "phenomenon": "order",
        }
        for a, b in zip(WORDS[:20], WORDS[20:40])
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = evaluate_checkpoint(out, pairs=str(pairs), show_progress=False)
    assert metrics["minimal_pair_score"] == "pll_word"
    for key in ("minimal_pair_accuracy", "minimal_pair_accuracy_rtd", "minimal_pair_accuracy_pll"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert {"rtd_auc", "masked_accuracy", "pseudo_perplexity"} <= set(metrics)


def test_models_table_counts_the_discriminator():
    from masklab.models.build import parameter_table

    rows = parameter_table(["tiny", "mini"], ["electra"])
    assert [r["architecture"] for r in rows] == ["electra", "electra"]
    assert all(abs(r["vs_reference"]) < 0.01 for r in rows), rows


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["model.architecture=llama"], "model.architecture=llama cannot train train.objective=electra"),
        (["electra.generator_fraction=1.5"], "electra.generator_fraction must be in (0, 1]"),
        (["electra.rtd_weight=0"], "electra.rtd_weight must be > 0"),
        (["electra.rtd_weight=-1"], "electra.rtd_weight must be > 0"),
        (["masking.diffusion.schedule=linear"], "masking.diffusion does not apply to train.objective=electra"),
    ],
)
def test_bad_input_is_one_line(overrides, needle):
    with pytest.raises(UserError) as error:
        build_config({}, ["train.objective=electra", *overrides])
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_bad_input_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "masklab.cli",
            "pretrain",
            "--set",
            "train.objective=electra",
            "--set",
            "electra.generator_fraction=2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "electra.generator_fraction" in done.stderr
