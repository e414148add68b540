"""The CLI end to end on a tiny corpus, and the bad-input matrix (one line, exit 2, no traceback)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_overrides
from masklab import cli

MASKLAB = [sys.executable, "-m", "masklab.cli"]


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_pretrain_evaluate_fill_mask_end_to_end(corpus_file, tmp_path):
    out = tmp_path / "run"
    args = sets(
        tiny_overrides(
            corpus_file,
            train__max_steps=300,
            train__eval_every=100,
            train__save_every=100,
            train__lr=3e-3,
            model__hidden_size=64,
            model__intermediate_size=128,
            eval__pppl_sequences=4,
        )
    )
    done = subprocess.run([*MASKLAB, "pretrain", *args, "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "checkpoint/model.safetensors",
        "checkpoint/tokenizer.json",
    ):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "masked_accuracy",
        "unigram_accuracy",
        "masked_perplexity",
        "train_tokens",
        "tokens_per_second",
        "wall_seconds",
    ):
        assert key in summary
    # the repeated-phrase corpus is predictable from context; the unigram baseline is ~1/60
    assert summary["masked_accuracy"] > 0.5
    assert summary["masked_accuracy"] > 5 * summary["unigram_accuracy"]
    assert summary["train_tokens"] == 300 * 8 * 32
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "val_masked_accuracy" in r] == [100, 200, 300]

    ev = subprocess.run([*MASKLAB, "evaluate", str(out), "--json"], capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr[-2000:]
    metrics = json.loads(ev.stdout)
    assert metrics["masked_accuracy"] == pytest.approx(summary["masked_accuracy"], abs=0.02)
    assert metrics["pseudo_perplexity"] > 1.0

    fm = subprocess.run(
        [*MASKLAB, "fill-mask", str(out), "w10 w11 w10 w11 [MASK] w11 w10 w11", "--top-k", "3"],
        capture_output=True,
        text=True,
    )
    assert fm.returncode == 0, fm.stderr[-2000:]
    assert fm.stdout.startswith("[MASK] #1:") and "w10" in fm.stdout.split("\n")[0]

    # --resume of the finished run: one line, exit 2, and the run is untouched
    before = (out / "checkpoint" / "model.safetensors").read_bytes()
    again = subprocess.run([*MASKLAB, "pretrain", "--resume", "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "finished run" in again.stderr, again.stderr
    assert (out / "checkpoint" / "model.safetensors").read_bytes() == before


def run_main(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, "argv", ["masklab", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, capsys.readouterr().err


def bad_inputs(tmp: Path, corpus: Path) -> dict:
    (tmp / "empty.txt").write_text("")
    (tmp / "latin1.txt").write_bytes("d\u00e9j\u00e0 vu, a long enough document\n".encode("latin-1"))
    (tmp / "binary.txt").write_bytes(b"\x00\xff\x10" * 100)
    (tmp / "notackpt").mkdir(exist_ok=True)
    (tmp / "notackpt" / "readme.txt").write_text("hello")
    return {
        "empty corpus": (["pretrain", "--set", f"data.corpus={tmp / 'empty.txt'}"], "no usable documents"),
        "non-utf8 corpus": (["pretrain", "--set", f"data.corpus={tmp / 'latin1.txt'}"], "not UTF-8"),
        "binary corpus": (["pretrain", "--set", f"data.corpus={tmp / 'binary.txt'}"], "looks binary"),
        "missing corpus": (["pretrain", "--set", "data.corpus=/nope/nothing.txt"], "does not exist"),
        "unknown key": (["pretrain", "--set", "train.learning_rate=1"], "valid keys in [train]"),
        "rate out of range": (["pretrain", "--set", "masking.rate=1.2"], "strictly between 0 and 1"),
        "fractions over 1": (
            ["pretrain", "--set", "masking.mask_token_fraction=0.9", "--set", "masking.random_token_fraction=0.2"],
            "exceeds 1",
        ),
        "missing config file": (["pretrain", str(tmp / "nope.yaml")], "does not exist"),
        "not a checkpoint": (["fill-mask", str(tmp / "notackpt"), "a [MASK]"], "not a model checkpoint"),
        "evaluate non-checkpoint": (["evaluate", str(tmp / "notackpt")], "not a model checkpoint"),
        "resume without run": (["pretrain", "--resume", "--out", str(tmp / "fresh")], "no config.yaml"),
        "tokenizer without mask": (
            ["pretrain", "--set", f"data.corpus={corpus}", "--set", f"tokenizer.path={tmp / 'notackpt'}"],
            "not a tokenizer directory",
        ),
        "unknown objective": (["finetune", "--set", "objectives.ctc=1"], "unknown objective 'ctc'"),
        "objective weight <= 0": (["finetune", "--set", "objectives.mlm=0"], "objectives.mlm must be a number > 0"),
        "unknown preset": (
            [
                "pretrain",
                "--set",
                f"data.corpus={corpus}",
                "--set",
                "model.preset=huge",
                "--set",
                "tokenizer.vocab_size=200",
                "--out",
                str(tmp / "preset"),
            ],
            "choose one of",
        ),
    }


@pytest.mark.parametrize("case", list(bad_inputs(Path("/tmp"), Path("/tmp")).keys()))
def test_bad_input_is_one_clear_line(case, tmp_path, corpus_file, monkeypatch, capsys):
    argv, needle = bad_inputs(tmp_path, corpus_file)[case]
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("masklab: error:")]
    assert len(lines) == 1 and needle in lines[0], err[-500:]
    assert "Traceback" not in err


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    done = subprocess.run(
        [*MASKLAB, "pretrain", "--set", "masking.rate=2"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "masking.rate" in done.stderr


def test_tokenizer_train_command(corpus_file, tmp_path, monkeypatch, capsys):
    from transformers import AutoTokenizer

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "masklab",
            "tokenizer",
            "train",
            "--corpus",
            str(corpus_file),
            "--model",
            "unigram",
            "--vocab-size",
            "120",
            "--out",
            str(tmp_path / "tok"),
            "--set",
            "data.min_chars=5",
        ],
    )
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    from masklab.data.tokenizer import SENTINELS, sentinel_ids

    # the learned vocabulary keeps its size; the 100 seq2seq sentinels come on top, as special tokens
    assert tok.mask_token == "[MASK]" and len(tok) <= 120 + len(SENTINELS)
    assert len(sentinel_ids(tok)) == len(SENTINELS) and set(sentinel_ids(tok)) <= set(tok.all_special_ids)
    assert "saved to" in capsys.readouterr().out
