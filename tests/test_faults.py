"""Faults that used to lose work or print a traceback: a full disk at a checkpoint, a file-size limit while
preparing a corpus, and the corpus being rewritten on every run although the cache was warm."""

import os
import resource
import subprocess
import sys

import torch

from conftest import masklab, tiny_overrides
from masklab.config import DataConfig
from masklab.data import prepare
from masklab.models import checkpoint

MASKLAB = [sys.executable, "-m", "masklab.cli"]


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_last_one(corpus_file, tmp_path, monkeypatch, capsys):
    """torch.save reports a full disk as a RuntimeError; the second save fails as a full disk would."""
    real_save, calls = torch.save, []

    def full_disk(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(b"partial")  # what a write cut short leaves
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 512 vs 448: No space left")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    out = tmp_path / "run"
    sets = tiny_overrides(corpus_file, train__max_steps=20, train__save_every=10, train__eval_every=0)
    args = [a for s in sets for a in ("--set", s)]
    code, _, err = masklab(monkeypatch, capsys, "pretrain", *args, "--out", out, "--quiet")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "could not write a checkpoint" in lines[0] and "the disk is full" in lines[0], err
    assert "Traceback" not in err
    assert not list(out.glob(".checkpoint-*")), "the partial checkpoint directory was left behind"
    state = torch.load(out / "checkpoint" / checkpoint.STATE_FILE, weights_only=True)
    assert state["step"] == 10  # the previous checkpoint, whole


def test_partial_checkpoints_of_a_killed_save_are_removed_by_the_next_one(corpus_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    sets = tiny_overrides(corpus_file, train__max_steps=10, train__save_every=5, train__eval_every=0)
    args = [a for s in sets for a in ("--set", s)]
    assert masklab(monkeypatch, capsys, "pretrain", *args, "--out", out, "--stop-at-step", 5)[0] == 0
    (out / ".checkpoint-killed").mkdir()  # what a kill in the middle of a save leaves
    (out / ".checkpoint-killed" / "model.safetensors").write_bytes(b"x" * 1000)
    code, _, err = masklab(monkeypatch, capsys, "pretrain", *args, "--out", out, "--resume")
    assert code == 0, err
    assert not list(out.glob(".checkpoint-*"))


def _limited(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_while_preparing_a_corpus_is_one_line(tmp_path):
    corpus = tmp_path / "big.txt"
    corpus.write_text("\n\n".join(f"document {i} " + "words of text " * 40 for i in range(2000)), encoding="utf-8")
    cache = tmp_path / "cache"
    env = {**os.environ, "MASKLAB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [*MASKLAB, "pretrain", "--set", f"data.corpus={corpus}", "--out", str(tmp_path / "run"), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_limited(256 * 1024),  # the corpus is ~1 MB: its cleaned copy cannot be written
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "file-size limit" in lines[0], done.stderr[-2000:]
    assert not [p for p in (cache / "corpora").iterdir() if p.name.startswith(".prep-")]


def test_a_warm_corpus_cache_does_not_clean_or_write_the_corpus_again(tmp_path, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(f"a document number {i} with some words" for i in range(50)), encoding="utf-8")
    cfg = DataConfig(corpus=str(corpus), cache_dir=str(tmp_path / "cache"))
    first = prepare.prepare_corpus(cfg)

    def refuse(*args):
        raise AssertionError("the corpus was cleaned and written again")

    monkeypatch.setattr(prepare, "_clean_into", refuse)
    again = prepare.prepare_corpus(cfg)
    assert (again.directory, again.digest, again.stats) == (first.directory, first.digest, first.stats)
    corpus.write_text(corpus.read_text(encoding="utf-8") + "\n\none more document here", encoding="utf-8")
    monkeypatch.undo()
    changed = prepare.prepare_corpus(cfg)  # other bytes: cleaned afresh
    assert changed.digest != first.digest and changed.stats["train_docs"] + changed.stats["val_docs"] == 51
