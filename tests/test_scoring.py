"""Sentence scores against one-at-a-time reference computations, and the yardsticks end to end:
minimal pairs, cloze, generation figures and `masklab evaluate --pairs ... --json` on every objective."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import WORDS, tiny_overrides
from masklab.config import build_config
from masklab.evaluate.scoring import SentenceScorer

MASKLAB = [sys.executable, "-m", "masklab.cli"]
TEXTS = ["w1 w2 w1 w2 w1 w2.", "w7 w30 w7 w30 w7.", "w5 w9"]


def logp(logits, token):
    return float(torch.log_softmax(logits.detach().float(), -1)[token])


@pytest.mark.parametrize("architecture", ["modernbert", "bert"])
def test_pll_is_the_sum_of_one_by_one_masked_log_probabilities(tiny_tokenizer, architecture, tiny_model):
    model = tiny_model(tiny_tokenizer, "mlm", architecture)
    scorer = SentenceScorer(model, tiny_tokenizer)
    tok = tiny_tokenizer
    for text, score, word_score in zip(TEXTS, scorer.scores("pll", TEXTS), scorer.scores("pll_word", TEXTS)):
        ids = tok(text)["input_ids"]  # [CLS] ... [SEP]
        expected = 0.0
        for i in range(1, len(ids) - 1):
            masked = torch.tensor([ids])
            masked[0, i] = tok.mask_token_id
            expected += logp(model(input_ids=masked).logits[0, i], ids[i])
        assert score == pytest.approx(expected, abs=1e-4)
        words = tok(text, add_special_tokens=False).word_ids()
        if len(set(words)) == len(words):  # one token per word: the word-level variant is the same number
            assert word_score == pytest.approx(expected, abs=1e-4)


def test_pll_word_masks_the_rest_of_the_word(tiny_tokenizer, tiny_checkpoint):
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(tiny_checkpoint).eval()  # large random weights: context matters
    scorer = SentenceScorer(model, tiny_tokenizer)
    text = "w12345 w1"  # a word the 200-token vocabulary splits into pieces
    enc = tiny_tokenizer(text, add_special_tokens=False)
    assert enc.word_ids().count(0) > 1
    pieces = enc.word_ids().count(0)
    ids = [tiny_tokenizer.cls_token_id, *enc["input_ids"], tiny_tokenizer.sep_token_id]
    expected = 0.0
    for i in range(len(enc["input_ids"])):
        masked = torch.tensor([ids])
        masked[0, 1 + i] = tiny_tokenizer.mask_token_id
        if i < pieces:
            masked[0, 1 + i : 1 + pieces] = tiny_tokenizer.mask_token_id  # the word's later pieces stay hidden
        expected += logp(model(input_ids=masked).logits[0, 1 + i], ids[1 + i])
    assert scorer.scores("pll_word", [text])[0] == pytest.approx(expected, abs=1e-4)
    assert abs(scorer.scores("pll", [text])[0] - expected) > 0.01  # plain PLL sees the word's other pieces


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_causal_score_is_the_sum_of_next_token_log_probabilities(tiny_tokenizer, architecture, tiny_model):
    model = tiny_model(tiny_tokenizer, "clm", architecture)
    scorer = SentenceScorer(model, tiny_tokenizer)
    for text, score in zip(TEXTS, scorer.scores("causal", TEXTS)):
        ids = [tiny_tokenizer.cls_token_id, *tiny_tokenizer(text, add_special_tokens=False)["input_ids"]]
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        assert score == pytest.approx(sum(logp(logits[i - 1], ids[i]) for i in range(1, len(ids))), abs=1e-4)


def test_masked_scores_of_a_hybrid_decoder_read_the_previous_position(tiny_tokenizer, tiny_model):
    model = tiny_model(tiny_tokenizer, "hybrid")
    scorer = SentenceScorer(model, tiny_tokenizer)
    text = TEXTS[0]
    ids = tiny_tokenizer(text)["input_ids"]
    expected = 0.0
    for i in range(1, len(ids) - 1):
        masked = torch.tensor([ids])
        masked[0, i] = tiny_tokenizer.mask_token_id
        logits = model(input_ids=masked, attention_mask=torch.zeros(1, 1, len(ids), len(ids))).logits[
            0
        ]  # bidirectional
        expected += logp(logits[i - 1], ids[i])
    assert scorer.scores("pll", [text])[0] == pytest.approx(expected, abs=1e-4)


def test_sentinel_score_decodes_each_word_after_a_sentinel(tiny_tokenizer, tiny_model):
    from masklab.data.tokenizer import sentinel_ids

    model = tiny_model(tiny_tokenizer, "seq2seq")
    scorer = SentenceScorer(model, tiny_tokenizer)
    s0 = sentinel_ids(tiny_tokenizer)[0]
    words = ["w3", "w8", "w3"]
    expected = 0.0
    for w in range(len(words)):
        source = " ".join(words[:w] + ["<extra_id_0>"] + words[w + 1 :])
        enc = torch.tensor([tiny_tokenizer(source)["input_ids"]])
        fill = tiny_tokenizer(words[w], add_special_tokens=False)["input_ids"]
        decoder = torch.tensor([[tiny_tokenizer.pad_token_id, s0, *fill[:-1]]])
        logits = model(input_ids=enc, decoder_input_ids=decoder).logits[0]
        expected += sum(logp(logits[1 + k], t) for k, t in enumerate(fill))
    assert scorer.scores("sentinel", [" ".join(words)])[0] == pytest.approx(expected, abs=1e-4)


def test_scores_do_not_depend_on_batching(tiny_tokenizer, tiny_model):
    for objective, kind in (("mlm", "pll_word"), ("clm", "causal"), ("seq2seq", "sentinel")):
        model = tiny_model(tiny_tokenizer, objective)
        together = SentenceScorer(model, tiny_tokenizer).scores(kind, TEXTS)
        alone = [SentenceScorer(model, tiny_tokenizer, tokens_per_batch=8).scores(kind, [t])[0] for t in TEXTS]
        np.testing.assert_allclose(together, alone, atol=1e-4)


def test_generation_figures():
    from masklab.evaluate.generation import distinct_n, repetition

    assert distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert repetition([[1, 2, 3, 4, 1, 2, 3, 4]]) == pytest.approx(1 - 4 / 5)
    assert repetition([[1, 2, 3, 4, 5]]) == 0.0


def test_cloze_items_use_frequency_matched_distractors():
    from masklab.evaluate.cloze import cloze_items

    band = [f"word{i}" for i in range(300)]
    docs = [" ".join(["start"] + [band[(7 * k) % 300] for k in range(12)]) + "." for _ in range(3)]
    items = cloze_items(docs, band, 3, seed=1)
    assert len(items) == 3
    for item in items:
        assert item.candidates[0] == item.answer and len(set(item.candidates)) == 5
        rank = band.index(item.answer)
        assert all(abs(band.index(c) - rank) <= 25 for c in item.candidates)
        assert f"{item.left} {item.answer} {item.right}".strip() in docs[0]


def pair_file(tmp_path):
    """Pairs where the good sentence is the corpus's own pattern and the bad one breaks it."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(40):
        a, b, c = rng.choice(WORDS, 3, replace=False)
        good = " ".join([a, b] * 4)
        bad = " ".join([a, b] * 2 + [a, c] + [a, b])  # one word replaced by one the phrase never has
        rows.append({"sentence_good": good, "sentence_bad": bad, "UID": "alternation"})
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("objective", ["mlm", "clm", "seq2seq", "hybrid"])
def test_minimal_pairs_follow_the_training_text(corpus_file, tmp_path, objective):
    """After a short run on the repeated-phrase corpus, every objective prefers the pattern it saw."""
    from masklab.pretrain.run import pretrain

    run = tmp_path / objective
    steps = 600 if objective == "seq2seq" else 300  # span corruption learns the pattern more slowly
    pretrain(
        build_config(
            {},
            tiny_overrides(
                corpus_file,
                train__max_steps=steps,
                train__eval_every=0,
                train__save_every=0,
                train__objective=objective,
            ),
        ),
        run,
        show_progress=False,
    )
    done = subprocess.run(
        [
            *MASKLAB,
            "evaluate",
            str(run),
            "--pairs",
            str(pair_file(tmp_path)),
            "--cloze",
            "5",
            "--json",
            "--set",
            "eval.score_sentences=8",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout)
    assert metrics["objective"] == objective and metrics["minimal_pairs"] == 40
    assert metrics["minimal_pair_accuracy"] >= 0.9, metrics  # chance is 0.5
    assert set(metrics["minimal_pair_accuracy_by_phenomenon"]) == {"alternation"}
    assert "minimal_pair_accuracy" in metrics["comparable_across_objectives"]
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["minimal_pair_accuracy"] == metrics["minimal_pair_accuracy"]


def test_evaluate_and_fill_mask_bad_input(tmp_path, corpus_file):
    from masklab.pretrain.run import pretrain

    run = tmp_path / "clm"
    pretrain(
        build_config({}, tiny_overrides(corpus_file, train__max_steps=2, train__objective="clm")),
        run,
        show_progress=False,
    )
    bad = tmp_path / "bad.jsonl"
    for content, message in [('{"sentence_good": "a b"}\n', "sentence_bad"), ("not json\n", "line 1")]:
        bad.write_text(content, encoding="utf-8")
        done = subprocess.run([*MASKLAB, "evaluate", str(run), "--pairs", str(bad)], capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run([*MASKLAB, "fill-mask", str(run), "the [MASK]"], capture_output=True, text=True)
    assert done.returncode == 2 and "causal LM, not a masked LM" in done.stderr and "Traceback" not in done.stderr
