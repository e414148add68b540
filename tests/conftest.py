"""Shared fixtures: a private cache, a tiny learnable corpus, a 200-word tokenizer, a 2-layer 32-wide BERT."""

from __future__ import annotations

import random

import pytest

WORDS = [f"w{i}" for i in range(60)]


def cyclic_corpus(n_docs: int = 120, seed: int = 0) -> list[str]:
    """Documents that repeat a random two-word phrase: every masked word is predictable from its
    context (copy it from two positions away), while the unigram baseline stays near 1/60."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        phrase = rng.sample(WORDS, 2)
        length = rng.randrange(20, 40)
        docs.append(" ".join(phrase * length) + ".")
    return docs


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MASKLAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "cyclic.txt"
    path.write_text("\n\n".join(cyclic_corpus()) + "\n", encoding="utf-8")
    return path


TINY_MODEL = ["model.preset=tiny", "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2",
              "model.intermediate_size=64", "tokenizer.vocab_size=200", "data.seq_length=32"]


def tiny_overrides(corpus, **extra) -> list[str]:
    """--set overrides for a fast run of the tiny model on `corpus`."""
    sets = [f"data.corpus={corpus}", *TINY_MODEL, "train.batch_size=8", "train.lr=3e-3", "train.precision=fp32",
            "train.log_every=5", "eval.max_blocks=32", "eval.pppl_sequences=2", "eval.pppl_max_length=16", "data.min_chars=5"]
    sets += [f"{k.replace('__', '.')}={v}" for k, v in extra.items()]
    return sets


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    from masklab.config import build_config
    from masklab.data.prepare import prepare_corpus, training_lines
    from masklab.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tok")
    path = root / "corpus.txt"
    path.write_text("\n\n".join(cyclic_corpus()), encoding="utf-8")
    cfg = build_config({}, [f"data.corpus={path}", "tokenizer.vocab_size=200", f"data.cache_dir={root / 'cache'}"])
    return train_tokenizer(training_lines(prepare_corpus(cfg.data)), cfg.tokenizer, root / "tokenizer")
