"""`--pairs from:CORPUS`: sentences of held-out documents against their reversal and an adjacent-word swap,
in English and Persian (with the zero-width non-joiner), deterministic, with one-line errors, end to end."""

import dataclasses
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from conftest import WORDS, masklab, tiny_overrides
from masklab.config import DataConfig, build_config
from masklab.data.prepare import prepare_corpus
from masklab.errors import UserError
from masklab.evaluate.pairs.corpus import (
    PHENOMENA,
    corpus_pairs,
    sentence_pairs,
    split_sentences,
    words_and_end,
)
from masklab.pretrain.run import pretrain

ZWNJ = "\u200c"
# Persian words, three of them joined inside by a zero-width non-joiner
FA_WORDS = ["من", "کتاب" + ZWNJ + "ها", "را", "خواندم", "او", "به", "خانه", "می" + ZWNJ + "رود", "آن" + ZWNJ + "ها"]
FA_WORDS += ["دیروز", "مدرسه", "رفتند", "امروز", "نامه", "نوشت", "شهر", "بزرگ", "است"]


def prose_corpus(language: str, n_docs: int = 60, seed: int = 0) -> list[str]:
    """Documents of 3-5 sentences, each naming its document (d7 / سند7) so a sentence can only come from one."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        sentences = []
        for s in range(rng.randrange(3, 6)):
            if language == "en":
                words = [f"d{d}", *rng.sample(WORDS, rng.randrange(4, 9))]
                sentences.append(" ".join(words) + rng.choice([".", "!", "?"]))
            else:  # a Persian comma inside, a Persian question mark or a full stop at the end
                words = [f"سند{d}", *rng.sample(FA_WORDS, rng.randrange(4, 9))]
                words[1] += "،"
                sentences.append(" ".join(words) + rng.choice([".", "؟", "!"]))
        docs.append(" ".join(sentences))
    return docs


@pytest.fixture
def prose(tmp_path):
    """A corpus file of `language`'s prose documents, and the run-like data settings that split it."""

    def make(language: str, **settings) -> tuple[str, DataConfig]:
        path = tmp_path / f"{language}.txt"
        path.write_text("\n\n".join(prose_corpus(language)) + "\n", encoding="utf-8")
        data = DataConfig(corpus=str(path), min_chars=5, val_fraction=0.2, cache_dir=str(tmp_path / "cache"))
        return str(path), dataclasses.replace(data, **settings)

    return make


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("Mr. Smith went to Washington. He stayed!", ["Mr. Smith went to Washington.", "He stayed!"]),
        ("The U.S. Congress met at 3 p.m. today. Why?", ["The U.S. Congress met at 3 p.m. today.", "Why?"]),
        ('He said "we go." Then\na heading', ['He said "we go."', "Then", "a heading"]),
        (
            "lowercase chat ends here. and starts here e.g. now",
            ["lowercase chat ends here.", "and starts here e.g. now"],
        ),
        ("من به خانه رفتم، او ماند. تو کجا می" + ZWNJ + "روی؟ بیا!", None),
    ],
)
def test_sentences_split_at_terminators_in_english_and_persian(text, sentences):
    if sentences is None:  # Persian: '،' is a comma inside the sentence, '؟' ends one, ZWNJ stays in its word
        sentences = ["من به خانه رفتم، او ماند.", "تو کجا می" + ZWNJ + "روی؟", "بیا!"]
    assert split_sentences(text) == sentences


@pytest.mark.parametrize("language", ["en", "fa"])
def test_reversal_and_swap_are_minimal_pairs_of_the_same_words(language):
    sentences = [s for doc in prose_corpus(language) for s in split_sentences(doc)]
    pairs = sentence_pairs(sentences, seed=3, per_phenomenon=100)
    assert Counter(p.phenomenon for p in pairs) == {"reversal": 100, "adjacent_swap": 100}
    for pair in pairs:
        good, end = words_and_end(pair.good)
        bad, bad_end = words_and_end(pair.bad)
        assert end == bad_end and end in (".", "!", "?", "؟")  # the closing mark stays at the end
        assert Counter(good) == Counter(bad) and good != bad  # the same words in another order
        assert sorted(pair.good) == sorted(pair.bad)  # down to the character: commas and ZWNJs move with words
        if pair.phenomenon == "reversal":
            assert bad == good[::-1]
        else:
            moved = [i for i in range(len(good)) if good[i] != bad[i]]
            assert len(moved) == 2 and moved[1] == moved[0] + 1
    if language == "fa":
        joined = [w for p in pairs for w in p.bad.split() if ZWNJ in w]
        assert joined and all(w.strip("،.؟!") in FA_WORDS for w in joined)  # never split at the ZWNJ


def test_pairs_are_deterministic_seeded_and_free_of_hash_order(prose, tmp_path):
    corpus, data = prose("fa")
    first = corpus_pairs(corpus, data, seed=5, per_phenomenon=20)
    assert corpus_pairs(corpus, data, seed=5, per_phenomenon=20) == first
    assert corpus_pairs(corpus, data, seed=6, per_phenomenon=20).pairs != first.pairs
    larger = corpus_pairs(corpus, data, seed=5, per_phenomenon=40).pairs
    assert set(first.pairs) <= set(larger)  # a larger cap keeps the smaller cap's pairs
    script = (
        "import json, sys; from masklab.config import DataConfig; from masklab.evaluate.pairs.corpus import "
        "corpus_pairs; d = DataConfig(**json.loads(sys.argv[1])); "
        "print(json.dumps([p.__dict__ for p in corpus_pairs(d.corpus, d, seed=5, per_phenomenon=20).pairs]))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):  # another process, another string-hash order, another cache
        settings = {**dataclasses.asdict(data), "cache_dir": str(tmp_path / f"cache-{hash_seed}")}
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(settings)], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.add(done.stdout)
    assert outputs == {json.dumps([p.__dict__ for p in first.pairs]) + "\n"}


@pytest.mark.parametrize("language", ["en", "fa"])
def test_sentences_come_from_held_out_documents_only(prose, language):
    corpus, data = prose(language)
    prepared = prepare_corpus(data)
    val, train = list(prepared.documents("val")), list(prepared.documents("train"))
    assert val and train
    built = corpus_pairs(corpus, data, per_phenomenon=1000)
    assert built.origin["pairs_source"].startswith(f"held-out documents of {corpus}: the run's own validation")
    assert built.origin["pairs_heldout_documents"] == len(val)
    goods = {p.good for p in built.pairs}
    assert all(any(g in doc for doc in val) and not any(g in doc for doc in train) for g in goods)
    # every usable held-out sentence was used: the cap is above their number
    assert len(goods) == sum(len(words_and_end(s)[0]) >= 4 for doc in val for s in split_sentences(doc))


def test_another_corpus_is_split_by_the_runs_settings(prose, tmp_path):
    corpus, data = prose("en")
    other = dataclasses.replace(data, corpus="builtin:sotu", val_fraction=0.0)
    built = corpus_pairs(corpus, other, per_phenomenon=1000)
    assert "the run's split settings (data.val_fraction=0.05" in built.origin["pairs_source"]
    val = list(prepare_corpus(dataclasses.replace(data, val_fraction=0.05)).documents("val"))
    assert all(any(p.good in doc for doc in val) for p in built.pairs)


def test_bad_corpora_raise_one_line_errors(prose, tmp_path):
    corpus, data = prose("en")
    short = tmp_path / "short.txt"
    short.write_text("\n\n".join(f"Item {i} here. Fine." for i in range(40)), encoding="utf-8")
    cases = [
        ("builtin:nope", data, "unknown built-in corpus"),
        (str(tmp_path / "missing.txt"), data, "does not exist"),
        ("", data, "needs a corpus after the colon"),
        (corpus, dataclasses.replace(data, val_fraction=0.0), "trained on all of"),
        (str(short), data, "hold no sentence of 4-40 words"),
    ]
    for spec, run_data, message in cases:
        with pytest.raises(UserError, match=message) as raised:
            corpus_pairs(spec, run_data)
        assert "\n" not in str(raised.value)


def chain_corpus(n_docs: int = 200, seed: int = 0) -> list[str]:
    """Sentences that walk one fixed cycle through the 60 words: each word is followed by one word only,
    so a model that learned the order rejects every reversal (no step of a reversed walk is in the cycle)."""
    rng = random.Random(seed)
    cycle = rng.sample(WORDS, len(WORDS))
    docs = []
    for _ in range(n_docs):
        sentences = []
        for _ in range(5):
            start, length = rng.randrange(len(cycle)), rng.randrange(5, 10)
            sentences.append(" ".join(cycle[(start + i) % len(cycle)] for i in range(length)) + ".")
        docs.append(" ".join(sentences))
    return docs


@pytest.fixture(scope="module")
def ordered_run(tmp_path_factory):
    """A tiny causal LM trained on the chain corpus, holding a fifth of its documents out."""
    root = tmp_path_factory.mktemp("ordered")
    corpus = root / "chain.txt"
    corpus.write_text("\n\n".join(chain_corpus()) + "\n", encoding="utf-8")
    overrides = tiny_overrides(
        corpus,
        train__max_steps=60,  # 40 steps already reach 1.0 on both phenomena; one step sits at 0.5-0.56
        train__eval_every=0,
        train__save_every=0,
        train__objective="clm",
        data__val_fraction=0.2,
    )
    pretrain(build_config({}, overrides), root / "run", show_progress=False)
    return root / "run", corpus


def test_evaluate_from_corpus_end_to_end_prefers_the_trained_order(ordered_run, monkeypatch, capsys):
    run, corpus = ordered_run
    code, out, err = masklab(monkeypatch, capsys, "evaluate", run, "--pairs", f"from:{corpus}", "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["pairs_file"] == f"from:{corpus}"
    assert "the run's own validation split (data.val_fraction=0.2" in metrics["pairs_source"]
    n = metrics["pairs_sentences"]
    assert n >= 100 and metrics["minimal_pairs"] == 2 * n
    accuracy = metrics["minimal_pair_accuracy_by_phenomenon"]
    assert set(accuracy) == set(PHENOMENA)
    # chance is 0.5: four standard deviations of a coin above it, a bound a model that ignored order fails
    # with probability about 3e-5
    bound = 0.5 + 4 * math.sqrt(0.25 / n)
    assert accuracy["reversal"] > bound and accuracy["adjacent_swap"] > bound, metrics
    saved = json.loads((run / "evaluation.json").read_text(encoding="utf-8"))
    assert saved["pairs_source"] == metrics["pairs_source"]


def test_evaluate_from_bad_corpus_is_one_line_and_exit_2(ordered_run, monkeypatch, capsys):
    run, _ = ordered_run
    for spec, message in [("from:builtin:nope", "unknown built-in corpus"), ("from:", "after the colon")]:
        code, _, err = masklab(monkeypatch, capsys, "evaluate", run, "--pairs", spec)
        assert code == 2 and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("objective, language", [("mlm", "fa"), ("seq2seq", "en"), ("hybrid", "en"), ("electra", "en")])
def test_every_objective_scores_pairs_from_a_corpus(tmp_path, prose, objective, language, monkeypatch, capsys):
    """Two training steps are enough to check the pairs reach each objective's scores (Persian through the
    default objective's tokenizer and PLL; English elsewhere, whose one-token words keep PLL quick)."""
    corpus, _ = prose(language)
    overrides = tiny_overrides(corpus, train__max_steps=2, train__objective=objective, data__val_fraction=0.1)
    pretrain(build_config({}, overrides), tmp_path / "run", show_progress=False)
    code, out, err = masklab(monkeypatch, capsys, "evaluate", tmp_path / "run", "--pairs", f"from:{corpus}", "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert set(metrics["minimal_pair_accuracy_by_phenomenon"]) == set(PHENOMENA)
    assert metrics["minimal_pairs"] == 2 * metrics["pairs_sentences"] > 0
