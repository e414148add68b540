"""Finished runs read back from their directories: summary.json and every seed's metrics.jsonl."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from masklab.errors import UserError


@dataclass
class Run:
    name: str
    path: Path
    summary: dict
    seed_logs: list[list[dict]]  # metrics.jsonl records, one list per seed


def load_run(path: str | Path, name: str = "") -> Run:
    path = Path(path)
    summary_file = path / "summary.json"
    if not summary_file.exists():
        raise UserError(
            f"{path} is not a finished fine-tuning run (no summary.json); pass directories written by masklab finetune"
        )
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    if "test_accuracy" not in summary or "layers" not in summary:
        raise UserError(f"{summary_file} is not a fine-tuning summary; pass directories written by masklab finetune")
    return Run(name or path.name, path, summary, read_seed_logs(path, summary))


def read_seed_logs(path: Path, summary: dict) -> list[list[dict]]:
    """metrics.jsonl of each seed directory the summary names (or of `path` itself for a single seed)."""
    seed_dirs = [path / r for r in summary.get("runs", [])] or [path]
    return [
        [json.loads(line) for line in (d / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        for d in seed_dirs
        if (d / "metrics.jsonl").exists()
    ]


def run_names(paths: list[Path]) -> list[str]:
    """Directory names, with the parent added where two runs would otherwise share a name."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]
