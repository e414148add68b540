"""Same seed, same bits: every check here runs masklab in fresh processes with fresh caches, as a user on
a new machine would, and compares what they wrote with atol = rtol = 0."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_MODEL, cyclic_corpus

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "masklab"
VARYING = re.compile(r"seconds|per_second|tokens_per|wall|eval_time|choice|rates|speed|threads", re.I)  # by nature


def masklab(args: list, cache: Path, threads: int = 2, check: bool = True) -> subprocess.CompletedProcess:
    """One CLI run in its own process with its own cache directory and thread counts."""
    env = {
        **os.environ,
        "MASKLAB_CACHE": str(cache),
        "RAYON_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "masklab.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every safetensors file under a run directory, keyed by relative path."""
    out = {}
    for path in sorted(run_dir.rglob("*.safetensors")):
        for name, value in load_file(str(path)).items():
            out[f"{path.relative_to(run_dir)}:{name}"] = value
    assert out, f"{run_dir} holds no weights"
    return out


def assert_same_weights(a_dir: Path, b_dir: Path) -> None:
    a, b = tensors(a_dir), tensors(b_dir)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def figures(summary: dict) -> dict:
    """A summary without its timings and paths (which differ between two runs by nature)."""
    if isinstance(summary, dict):
        return {
            k: figures(v)
            for k, v in summary.items()
            if not VARYING.search(k) and k not in ("checkpoint", "runs", "models")
        }
    if isinstance(summary, list):
        return [figures(v) for v in summary]
    return summary


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory) -> Path:
    """English and Persian (with ZWNJ) text whose words tie in frequency: the case hash order used to decide."""
    lines = cyclic_corpus(80)
    lines += [
        "می\u200cخواهم کتاب بخوانم و نامه\u200cها را بنویسم.",
        "آن\u200cها به خانه می\u200cروند، ما به مدرسه.",
    ] * 20
    lines += [f"word{i} token{i % 7} piece{i % 11}" for i in range(300)]
    path = tmp_path_factory.mktemp("mixed") / "mixed.txt"
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "unigram"])
def test_tokenizer_training_is_byte_identical_across_processes(mixed_corpus, tmp_path, model):
    outs = []
    for i, threads in enumerate((1, 2)):
        out = tmp_path / f"tok{i}"
        masklab(
            ["tokenizer", "train", "--corpus", mixed_corpus, "--model", model, "--vocab-size", 400, "--out", out],
            tmp_path / f"cache{i}",
            threads,
        )
        outs.append((out / "tokenizer.json").read_bytes())
    assert outs[0] == outs[1]
    vocab = json.loads(outs[0])["model"]["vocab"]
    pieces = [v[0] for v in vocab] if isinstance(vocab, list) else list(vocab)
    learned = [p for p in pieces if len(p.lstrip("#▁Ġ")) > 1 and not p.startswith("[")]
    assert len(learned) >= 10  # merges or pieces were learned, not only characters and specials


RUNS = {
    "pretrain-mlm": lambda corpus: ["pretrain", *_sets(corpus, "train.objective=mlm")],
    "pretrain-clm": lambda corpus: ["pretrain", *_sets(corpus, "train.objective=clm")],
    "pretrain-mlm-auto-precision": lambda corpus: ["pretrain", *_sets(corpus, "train.objective=mlm", precision="auto")],
}


def _sets(corpus, *extra, precision="fp32") -> list[str]:
    sets = [
        f"data.corpus={corpus}",
        *TINY_MODEL,
        "train.batch_size=8",
        "train.lr=3e-3",
        f"train.precision={precision}",
        "train.max_steps=16",
        "train.eval_every=0",
        "train.save_every=8",
        "eval.max_blocks=16",
        "eval.pppl_sequences=2",
        "eval.pppl_max_length=16",
        "data.min_chars=5",
        *extra,
    ]
    return [a for s in sets for a in ("--set", s)] + ["--quiet"]


@pytest.mark.parametrize("kind", list(RUNS))
def test_pretraining_twice_in_fresh_processes_gives_the_same_bits(mixed_corpus, tmp_path, kind):
    """Fresh caches, so each process trains its own tokenizer; bf16 is checked too where this machine picks it."""
    for i in (0, 1):
        masklab([*RUNS[kind](mixed_corpus), "--out", tmp_path / f"run{i}"], tmp_path / f"cache{i}")
    assert_same_weights(tmp_path / "run0", tmp_path / "run1")
    a, b = (json.loads((tmp_path / f"run{i}" / "summary.json").read_text()) for i in (0, 1))
    assert figures(a) == figures(b)
    assert a["preflight"]["tokenizer"]["format_chars_kept"] == a["preflight"]["tokenizer"]["format_chars"]


@pytest.fixture(scope="module")
def three_class_csv(tmp_path_factory) -> Path:
    import random

    rng = random.Random(0)
    words = [[f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)], [f"c{i}" for i in range(30)]]
    rows = ["text,label"]
    for i in range(300):
        y = i % 3
        rows.append(" ".join(rng.choices(words[y] + words[(y + 1) % 3][:5], k=rng.randrange(5, 15))) + f",l{y}")
    path = tmp_path_factory.mktemp("task") / "T.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


FINETUNE = [
    "--init",
    "random",
    "--arch",
    "tiny",
    "--max-steps",
    30,
    "--seed",
    3,
    "--set",
    "precision=fp32",
    "--set",
    "save_model=true",
    "--set",
    "eval_every=10",
    "--quiet",
]


def test_finetuning_from_random_init_twice_gives_the_same_bits(three_class_csv, tmp_path):
    for i in (0, 1):
        masklab(
            ["finetune", "--task", three_class_csv, *FINETUNE, "--out", tmp_path / f"ft{i}"], tmp_path / f"cache{i}"
        )
    assert_same_weights(tmp_path / "ft0", tmp_path / "ft1")
    a, b = (json.loads((tmp_path / f"ft{i}" / "summary.json").read_text()) for i in (0, 1))
    assert figures(a) == figures(b)


def test_a_killed_finetuning_resumed_equals_a_straight_run_of_another_process(three_class_csv, tmp_path):
    """The straight run comes from its own process and cache, so agreement is not the cache's doing."""
    masklab(["finetune", "--task", three_class_csv, *FINETUNE, "--out", tmp_path / "straight"], tmp_path / "cache0")
    split = ["finetune", "--task", three_class_csv, *FINETUNE, "--out", tmp_path / "split"]
    masklab([*split, "--stop-at-step", 13], tmp_path / "cache1")
    masklab([*split, "--resume"], tmp_path / "cache1")
    assert_same_weights(tmp_path / "straight", tmp_path / "split")


def test_a_paused_pretraining_resumed_equals_a_straight_run_of_another_process(mixed_corpus, tmp_path):
    args = RUNS["pretrain-mlm"](mixed_corpus)
    masklab([*args, "--out", tmp_path / "straight"], tmp_path / "cache0")
    masklab([*args, "--out", tmp_path / "split", "--stop-at-step", 8], tmp_path / "cache1")
    masklab([*args, "--out", tmp_path / "split", "--resume"], tmp_path / "cache2")  # and a third, empty cache
    a, b = (load_file(str(tmp_path / d / "checkpoint" / "model.safetensors")) for d in ("straight", "split"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def two_csv_tasks(tmp_path_factory) -> str:
    import random

    rng = random.Random(1)
    root = tmp_path_factory.mktemp("seq")
    paths = []
    for name, offset in (("A", 0), ("B", 50)):
        rows = ["text,label"] + [
            " ".join(rng.choices([f"x{j + offset + 25 * (i % 2)}" for j in range(25)], k=rng.randrange(5, 12)))
            + f",{name}{i % 2}"
            for i in range(200)
        ]
        (root / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        paths.append(str(root / f"{name}.csv"))
    return ",".join(paths)


def test_a_task_sequence_twice_gives_the_same_bits(two_csv_tasks, tmp_path):
    """EWC, so the regularizer's saved state (progress.safetensors) is part of what must agree."""
    for i in (0, 1):
        masklab(
            [
                "continual",
                "--tasks",
                two_csv_tasks,
                "--init",
                "random",
                "--method",
                "ewc",
                "--max-steps",
                12,
                "--set",
                "arch=tiny",
                "--set",
                "save_models=true",
                "--set",
                "precision=fp32",
                "--quiet",
                "--out",
                tmp_path / f"c{i}",
            ],
            tmp_path / f"cache{i}",
        )
    assert_same_weights(tmp_path / "c0", tmp_path / "c1")
    a, b = (json.loads((tmp_path / f"c{i}" / "summary.json").read_text()) for i in (0, 1))
    assert figures(a) == figures(b)


def test_a_study_gives_the_same_trials_under_any_jobs(mixed_corpus, tmp_path):
    import yaml

    base = dict(s.split("=", 1) for s in _sets(mixed_corpus)[1::2] if "=" in s)
    study = {
        "name": "jobs",
        "run": "pretrain",
        "base": {k: yaml.safe_load(v) for k, v in base.items()},
        "grid": {"masking.rate": [0.15, 0.3]},
        "seeds": [0],
        "metric": {"name": "masked_accuracy", "goal": "maximize"},
    }
    results = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        out.mkdir()
        (out / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
        masklab(["study", out / "study.yaml", "--jobs", jobs, "--out", out, "--quiet"], tmp_path / f"cache{jobs}")
        rows = {}
        for summary in sorted((out / "trials").glob("*/summary.json")):
            s = json.loads(summary.read_text())
            rows[summary.parent.name] = (s["masked_accuracy"], s["masked_loss"], s["final_train_loss"])
        results.append(rows)
    assert len(results[0]) == 2 and results[0] == results[1]


def test_the_package_loads_nothing_that_can_run_code():
    """DESIGN.md §7: safetensors or torch.load(weights_only=True), no pickle, no trust_remote_code=True."""
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if "torch.load(" in code and "weights_only=True" not in code:
                offences.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
            if re.search(r"\bimport pickle\b|\bpickle\.|\bcloudpickle\b|\bdill\b", code):
                offences.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
            if re.search(r"trust_remote_code\s*=\s*True", code):
                offences.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offences, "\n".join(offences)
