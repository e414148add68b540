"""Checkpoint I/O: finding a model directory, loading one, and checkpoints that survive being killed
(written to a temporary directory, then renamed).

`RUN/checkpoint/` holds the model (save_pretrained, safetensors) and tokenizer, so transformers
loads it directly, plus `trainer_state.pt` (optimizer, step, token count, RNG) for `--resume`.
The previous checkpoint is only removed after the new one is complete.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_model
from transformers import AutoModelForMaskedLM
from transformers.utils import logging as hf_logging

from masklab.data.tokenizer import load_tokenizer
from masklab.errors import UserError
from masklab.fsutil import replace_directory
from masklab.models.electra import generator_dir, load_pair

STATE_FILE = "trainer_state.pt"


def write_failure(exc: BaseException) -> str:
    """Why a write failed, in words: OSError's errno, or the message torch.save's RuntimeError carries."""
    errnum = getattr(exc, "errno", None)
    if errnum == errno.ENOSPC or "No space left" in str(exc):
        return "the disk is full"
    if errnum == errno.EFBIG or "File too large" in str(exc):
        return "a file grew past the file-size limit"
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0][:160] or type(exc).__name__


def remove_partial_checkpoints(run_dir: Path) -> None:
    """Remove the hidden `.checkpoint-*` directories a killed save left behind (they are never complete: a
    finished save renames its directory to `checkpoint`), so they do not keep a full disk full."""
    for partial in run_dir.glob(".checkpoint-*"):
        shutil.rmtree(partial, ignore_errors=True)


def save_checkpoint(run_dir: Path, model, tokenizer, optimizer, state: dict) -> Path:
    """Write model, tokenizer and trainer state to a hidden directory, then put it in place of `checkpoint/`
    (the previous one set aside until then). A failed write (a full disk, a file-size limit; torch.save
    reports these as RuntimeError) removes the partial directory, keeps the previous checkpoint and ends
    the run with one line."""
    hf_logging.disable_progress_bar()  # a per-checkpoint "Writing model shards" bar would break the training bar
    remove_partial_checkpoints(run_dir)
    final = run_dir / "checkpoint"
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        payload = dict(state, optimizer=optimizer.state_dict(), torch_rng=torch.get_rng_state())
        if torch.cuda.is_available():
            payload["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(payload, tmp / STATE_FILE)
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        replace_directory(tmp, final, run_dir / "checkpoint.old")
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(
            f"could not write a checkpoint to {run_dir} ({write_failure(exc)}); the previous checkpoint is kept; "
            "free space or choose another --out, then continue with --resume"
        ) from None
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint: `checkpoint/`, or `checkpoint.old/` if a save was cut short."""
    for name in ("checkpoint", "checkpoint.old"):
        if (run_dir / name / STATE_FILE).exists():
            return run_dir / name
    return None


def load_trainer_state(checkpoint: Path) -> dict:
    try:
        return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise UserError(
            f"{checkpoint / STATE_FILE} is unreadable ({type(exc).__name__}); the checkpoint is damaged, start a new "
            "run"
        ) from None


def resolve_checkpoint(path: str | Path) -> Path:
    """A save_pretrained directory, or a masklab run directory holding one in `checkpoint/`."""
    p = Path(path).expanduser()
    if (p / "checkpoint" / "config.json").exists():
        p = p / "checkpoint"
    if not p.is_dir():
        raise UserError(f"checkpoint {p} does not exist; pass a masklab run directory or a save_pretrained directory")
    has_weights = any(
        (p / name).exists() for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    )
    if not (p / "config.json").exists() or not has_weights:
        raise UserError(
            f"{p} is not a model checkpoint (needs config.json and model.safetensors); "
            "pass a masklab run directory or a directory written by save_pretrained"
        )
    return p


def checkpoint_family(directory: Path) -> str:
    """ "mlm", "clm", "seq2seq" or "electra": what kind of language model a checkpoint is, from its config.json."""

    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    names = " ".join(config.get("architectures") or [])
    if "ElectraForPreTraining" in names:  # a discriminator: evaluated and scored with the generator saved beside it
        return "electra"
    return "clm" if ("CausalLM" in names or "LMHeadModel" in names) else "mlm"


def load_language_model(path: str | Path):
    """(model in eval mode, tokenizer, family) for a checkpoint of any pretraining objective."""

    hf_logging.disable_progress_bar()
    directory = resolve_checkpoint(path)
    family = checkpoint_family(directory)
    if family == "mlm":
        model, tokenizer = load_masked_lm(directory)
        return model, tokenizer, family
    if family == "electra":
        return load_pair(directory), load_tokenizer(directory), family
    tokenizer = load_tokenizer(directory, "classify")
    auto = transformers.AutoModelForCausalLM if family == "clm" else transformers.AutoModelForSeq2SeqLM
    try:
        model = auto.from_pretrained(str(directory))
    except Exception as exc:  # damaged weights
        raise UserError(
            f"could not load the {family} model in {directory} ({type(exc).__name__}); is the checkpoint complete?"
        ) from None
    return model.eval(), tokenizer, family


def load_masked_lm(
    path: str | Path,
    other_family_hint: str = "it has no [MASK] to fill; score it with "
    "`masklab evaluate` (or fill a gap with its own pipeline)",
):
    """(model in eval mode, tokenizer) from a masklab run directory or any Hugging Face masked-LM directory;
    a causal or seq2seq checkpoint is a UserError ending in `other_family_hint` (what to do instead)."""

    hf_logging.disable_progress_bar()
    directory = resolve_checkpoint(path)
    family = checkpoint_family(directory)
    if family == "electra":  # an ELECTRA run: its generator is the masked LM
        directory, family = generator_dir(directory), "mlm"
    if family != "mlm":
        kind = {"clm": "a causal LM", "seq2seq": "an encoder-decoder"}[family]
        raise UserError(f"{directory} holds {kind}, not a masked LM: {other_family_hint}")
    tokenizer = load_tokenizer(directory)
    try:
        model = AutoModelForMaskedLM.from_pretrained(str(directory))
    except Exception as exc:  # wrong architecture or damaged weights
        raise UserError(
            f"could not load a masked-LM from {directory} ({type(exc).__name__}); is it a masked-LM checkpoint?"
        ) from None
    return model.eval(), tokenizer


def load_weights(model, checkpoint: Path) -> None:

    load_model(model, str(checkpoint / "model.safetensors"), strict=False)
