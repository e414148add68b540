"""The runs a playground serves, loaded once: model, tokenizer, family and the run's own config."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from masklab.config import load_config
from masklab.data.shards import unpadded_backend
from masklab.errors import UserError
from masklab.models.checkpoint import load_language_model, resolve_checkpoint

# longest text a view reads, whatever the model's positions allow: keeps every answer interactive
MAX_INPUT_TOKENS = 512


def hub_offline() -> None:
    """Never reach a model hub from the playground: everything it shows comes from the run directory."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@dataclass
class LoadedRun:
    name: str  # the label the page shows above this run's answers
    run: Path  # the directory the user named (run, checkpoint or study trial)
    checkpoint: Path
    model: object
    tokenizer: object
    family: str  # "mlm", "clm" or "seq2seq"
    config: object | None  # the run's RunConfig (config.yaml), None for a bare save_pretrained directory
    notice: str = ""  # what the page should say about how this run was chosen
    tables: dict = field(default_factory=dict, repr=False)  # tables learned from the run's corpus, made once per page

    @cached_property
    def backend(self):
        """The tokenizer's backend without padding or truncation (a copy: made once, not per request)."""

        return unpadded_backend(self.tokenizer)

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads at once: its position table, the tokenizer's limit and MAX_INPUT_TOKENS."""
        limits = [MAX_INPUT_TOKENS, getattr(self.model.config, "max_position_embeddings", MAX_INPUT_TOKENS)]
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and tokenizer_limit < 10**6:
            limits.append(tokenizer_limit)
        return min(limits)

    def require_masked(self, what: str) -> None:
        if self.family != "mlm":
            raise UserError(f"{self.name} is a {self.family} model: {what} needs a masked LM (try the Score tab)")


def _study_trial(study: Path) -> tuple[Path, str]:
    """A study directory: the first complete trial with a checkpoint, and a notice saying how to pick another."""
    results = study / "results.csv"
    rows = list(csv.DictReader(results.open(encoding="utf-8"))) if results.exists() else []
    for row in rows:
        trial = study / "trials" / row.get("key", "")
        if row.get("state") == "complete" and (trial / "checkpoint" / "config.json").exists():
            return trial, (
                f"{study} is a study: showing trial {row['trial']} ({row['key']}); "
                f"pass {study}/trials/KEY to look at another"
            )
    raise UserError(
        f"{study} is a study with no finished trial checkpoint yet; run `masklab study` to finish one, "
        "or pass a run directory"
    )


def locate(path: str | Path) -> tuple[Path, Path, str]:
    """(run directory, checkpoint directory, notice) for what the user named, with a one-line error otherwise."""

    run = Path(path).expanduser()
    if not run.exists():
        raise UserError(
            f"{run} does not exist; pass a masklab run directory (with checkpoint/) or a save_pretrained directory"
        )
    notice = ""
    if (run / "trials").is_dir() and not (run / "checkpoint").exists():
        run, notice = _study_trial(run)
    elif (
        (run / "config.yaml").exists()
        and not (run / "checkpoint" / "config.json").exists()
        and not (run / "config.json").exists()
    ):
        raise UserError(
            f"{run} is a run without a checkpoint yet (no {run / 'checkpoint'}); let the run save one "
            "(it does at every eval) or pass a finished run"
        )
    return run, resolve_checkpoint(run), notice


def load_run(path: str | Path, name: str = "") -> LoadedRun:

    hub_offline()
    run, checkpoint, notice = locate(path)
    architectures = " ".join(
        json.loads((checkpoint / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    )
    if "Classification" in architectures:
        raise UserError(
            f"{checkpoint} is a fine-tuned classifier ({architectures}): its language-model head was replaced by "
            "the task's, so it cannot fill masks or score text; pass the pretraining run it started from"
        )
    model, tokenizer, family = load_language_model(checkpoint)
    config = None
    if (run / "config.yaml").exists():
        try:
            config = load_config(run / "config.yaml")
        except UserError:  # a fine-tuning or continual run's config: the page still works from the checkpoint
            config = None
    return LoadedRun(name or run.name, run, checkpoint, model, tokenizer, family, config, notice)


def load_runs(paths: list[str | Path]) -> list[LoadedRun]:
    """Load one or two runs, named by their directories (A / B when the names clash)."""
    if not 1 <= len(paths) <= 2:
        raise UserError(f"the playground shows one run or two side by side (got {len(paths)})")
    runs = [load_run(p) for p in paths]
    if len(runs) == 2 and runs[0].name == runs[1].name:
        runs[0].name, runs[1].name = f"A: {runs[0].name}", f"B: {runs[1].name}"
    return runs
