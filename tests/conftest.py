"""Shared fixtures: a private cache, a tiny learnable corpus, a 200-word tokenizer, a 2-layer 32-wide BERT
checkpoint, and a separable two-class task; the CLI run as a user runs it, and tiny study files."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
import torch
import yaml

from masklab import cli
from masklab.config import build_config
from masklab.data.tasks import load_task
from masklab.finetune.config import build_finetune_config
from masklab.finetune.run import Encoded, majority_accuracy, train_seed
from masklab.models import build_model

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


TINY_MODEL = [
    "model.preset=tiny",
    "model.num_layers=2",
    "model.hidden_size=32",
    "model.num_heads=2",
    "model.intermediate_size=64",
    "tokenizer.vocab_size=200",
    "data.seq_length=32",
]


def tiny_overrides(corpus, **extra) -> list[str]:
    """--set overrides for a fast run of the tiny model on `corpus`."""
    sets = [
        f"data.corpus={corpus}",
        *TINY_MODEL,
        "train.batch_size=8",
        "train.lr=3e-3",
        "train.precision=fp32",
        "train.log_every=5",
        "eval.max_blocks=32",
        "eval.pppl_sequences=2",
        "eval.pppl_max_length=16",
        "data.min_chars=5",
    ]
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


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_tokenizer, tmp_path_factory):
    """A 2-layer, 32-wide BERT masked LM saved with the 200-word tokenizer, as a pretraining run would leave it."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tiny_tokenizer.pad_token_id,
        initializer_range=0.2,
    )  # large enough that random features carry the words to a probe
    path = tmp_path_factory.mktemp("ckpt")
    BertForMaskedLM(config).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def separable_task(tmp_path_factory):
    """Balanced two-class task: 'low' texts use words w0-w19, 'high' texts w40-w59 (majority baseline 0.5)."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("task") / "task.jsonl"
    rows = []
    for i in range(400):
        label = "low" if i % 2 else "high"
        pool = WORDS[:20] if label == "low" else WORDS[40:]
        rows.append({"text": " ".join(rng.choices(pool, k=rng.randrange(5, 10))), "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def finetune_config():
    """A factory: a small fine-tuning config for `task` from `init`, with keyword overrides."""

    def make(task, init, **kw):
        settings = {
            "task": task,
            "init": init,
            "batch_size": 16,
            "lr": 3e-3,
            "precision": "fp32",
            "max_eval_examples": 0,
            "analysis_examples": 32,
            "save_model": False,
            "dropout": 0.0,
            "max_length": 32,
            **kw,
        }
        return build_finetune_config(settings)

    return make


@pytest.fixture
def run_seed():
    """A factory: one seed of a fine-tuning config through the loop, into tmp_path/seed-N; returns its summary."""

    def run(cfg, tmp_path, seed=0):
        task = load_task(cfg.task, split_seed=cfg.split_seed)
        return train_seed(
            cfg, Encoded(task, majority_accuracy(task)), tmp_path / f"seed-{seed}", seed, show_progress=False
        )

    return run


TINY_SHAPE = ["model.preset=tiny", "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2"]


@pytest.fixture
def tiny_model():
    """A factory: a seeded two-layer model of `objective` (architecture, attention) for a tokenizer, in eval mode."""

    def make(tokenizer, objective, architecture="auto", attention="eager"):
        cfg = build_config(
            {},
            [
                *TINY_SHAPE,
                f"model.architecture={architecture}",
                f"model.attention={attention}",
                f"train.objective={objective}",
            ],
        )
        torch.manual_seed(0)
        return build_model(cfg.model, tokenizer, 32, objective).eval()

    return make


# -- the CLI and studies (tests/test_study*.py) ----------------------------------------------------------


def masklab(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI as a user does (UserError -> one line, exit 2): (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["masklab", *map(str, argv)])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def worker_command(path: Path, out: Path) -> list[str]:
    """`masklab study FILE --out OUT --worker` at one thread, as a second machine (or a second worker) runs it."""
    return [
        sys.executable,
        "-m",
        "masklab.cli",
        "study",
        str(path),
        "--out",
        str(out),
        "--worker",
        "--quiet",
        "--threads",
        "1",
    ]


def base_settings(corpus, **extra) -> dict:
    """A study's `base:` for tiny trials on `corpus` (20 steps unless `extra` says otherwise)."""
    settings = {"train__max_steps": 20, "train__eval_every": 10, "train__save_every": 10, **extra}
    items = dict(o.split("=", 1) for o in tiny_overrides(corpus, **settings))
    return {k: yaml.safe_load(v) for k, v in items.items()}


def write_study(path: Path, corpus, **fields) -> Path:
    """A study file: masking rate 0.15 / 0.3 x seeds 0, 1 of tiny trials, with `fields` replacing its keys."""
    study = {
        "name": "s",
        "run": "pretrain",
        "base": base_settings(corpus),
        "grid": {"masking.rate": [0.15, 0.3]},
        "seeds": [0, 1],
        "metric": {"name": "masked_accuracy", "goal": "maximize"},
    }
    study.update(fields)
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path
