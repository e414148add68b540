"""Minimal pairs in, minimal-pair accuracy out.

A pair is an acceptable sentence and an unacceptable one that differ minimally (BLiMP, Warstadt et
al. 2020, arXiv 1912.00582); a model passes the pair when it scores the acceptable one higher. Pairs
come from a JSONL file in BLiMP's own format, so BLiMP's 67 paradigm files are read as they ship, or
from a built-in suite written for the State of the Union corpus (`builtin:en`, `builtin:fa`), or are
built from the held-out sentences of any corpus (`from:CORPUS`, corpus.py), which needs the run's split.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from masklab.config import DataConfig
from masklab.errors import UserError
from masklab.evaluate.pairs.corpus import FROM, PER_PHENOMENON, corpus_pairs
from masklab.evaluate.pairs.english import english_pairs
from masklab.evaluate.pairs.pair import MinimalPair
from masklab.evaluate.pairs.persian import persian_pairs

# builtin:NAME -> the suite's generator; called only when that suite is asked for
BUILTIN_SUITES: dict[str, Callable[[], list[MinimalPair]]] = {"en": english_pairs, "fa": persian_pairs}

# Where a BLiMP-style row names its group, most specific last: our own field, then BLiMP's
# `linguistics_term` (12 phenomena, e.g. "anaphor_agreement"), then its `UID` (67 paradigms).
PHENOMENON_FIELDS = ("phenomenon", "linguistics_term", "UID")
FORMAT_HINT = 'one JSON object per line: {"sentence_good": "...", "sentence_bad": "...", "phenomenon": "..."}'


def pair_set(
    spec: str,
    run_data: DataConfig | None = None,
    count_tokens: Callable[[list[str]], Sequence[int]] | None = None,
    seed: int = 0,
    per_phenomenon: int = PER_PHENOMENON,
) -> tuple[list[MinimalPair], dict]:
    """The pairs `--pairs SPEC` names, and where they came from when that is more than the spec says.

    `from:CORPUS` is built for one run: `run_data` is its data config (its split), `count_tokens` the
    model's tokenizer count, `seed` the draw, `per_phenomenon` the pairs of each kind; every other spec ignores
    them."""
    if spec.startswith(FROM):
        built = corpus_pairs(spec.removeprefix(FROM), run_data, count_tokens, seed, per_phenomenon)
        return built.pairs, built.origin
    return load_pairs(spec), {}


def load_pairs(spec: str) -> list[MinimalPair]:
    """`builtin:en`, `builtin:fa`, or the path of a BLiMP-format JSONL file."""
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name not in BUILTIN_SUITES:
            valid = ", ".join(f"builtin:{n}" for n in BUILTIN_SUITES)
            raise UserError(
                f"unknown minimal-pair suite {spec!r}; use one of {valid}, from:CORPUS, or the path of a JSONL file"
            )
        return BUILTIN_SUITES[name]()
    return read_jsonl(Path(spec))


def read_jsonl(path: Path) -> list[MinimalPair]:
    """Every non-blank line of `path` as a pair; the file's stem names pairs that name no phenomenon."""
    if not path.exists():
        raise UserError(
            f"minimal-pair file {path} does not exist; pass a BLiMP-format JSONL file, builtin:en / builtin:fa "
            "or from:CORPUS"
        )
    if path.is_dir():
        raise UserError(f"{path} is a directory; pass one JSONL file (BLiMP's paradigm files can be joined with cat)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{path} line {line}: not UTF-8 text (byte {e.start}); re-save the file as UTF-8") from None
    pairs = [_pair(path, number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not pairs:
        raise UserError(f"{path} holds no minimal pairs; write {FORMAT_HINT}")
    return pairs


def _pair(path: Path, number: int, line: str) -> MinimalPair:
    where = f"{path} line {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); write {FORMAT_HINT}") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: a JSON {_json_type(row)}, not an object; write {FORMAT_HINT}")
    sentences = []
    for field in ("sentence_good", "sentence_bad"):
        if field not in row:
            raise UserError(f"{where}: no {field!r} field; write {FORMAT_HINT}")
        value = row[field]
        if not isinstance(value, str):
            raise UserError(f"{where}: {field!r} is a JSON {_json_type(value)}; it must be the sentence as a string")
        if not value.strip():
            raise UserError(f"{where}: {field!r} is empty; give the sentence or delete the line")
        sentences.append(value)
    good, bad = sentences
    if good == bad:
        # the pair could only tie: it would count against every model and tell nothing apart
        raise UserError(f"{where}: sentence_good and sentence_bad are the same sentence; a pair must differ")
    named = [row[f] for f in PHENOMENON_FIELDS if isinstance(row.get(f), str) and row[f].strip()]
    return MinimalPair(good, bad, named[0] if named else path.stem)


def _json_type(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def minimal_pair_accuracy(
    pairs: Sequence[MinimalPair], good_scores: Sequence[float], bad_scores: Sequence[float]
) -> dict:
    """The share of pairs whose good sentence scores strictly higher, overall and per phenomenon.

    An exact tie counts as wrong: a model that gives both sentences the same score (a constant
    model, or a truncation that cuts off the differing word) has not preferred the good one, and
    half credit would hand it chance accuracy for telling nothing apart (a flaw of BabyLM's first
    evaluation). Ties are counted in "ties" so a score resting on them shows. A NaN score counts 0.
    """
    if not len(pairs) == len(good_scores) == len(bad_scores):
        raise ValueError(f"{len(pairs)} pairs but {len(good_scores)} good and {len(bad_scores)} bad scores")
    if not pairs:
        raise ValueError("no pairs to score")
    credit: dict[str, list[float]] = {}
    for pair, good, bad in zip(pairs, good_scores, bad_scores):
        credit.setdefault(pair.phenomenon, []).append(1.0 if good > bad else 0.0)
    total = sum(sum(c) for c in credit.values())
    ties = sum(
        int(good == bad) for good, bad in zip(good_scores, bad_scores)
    )  # plain int: numpy scores give numpy bools
    return {
        "minimal_pair_accuracy": total / len(pairs),
        "pairs": len(pairs),
        "ties": ties,
        "by_phenomenon": {name: {"accuracy": sum(c) / len(c), "pairs": len(c)} for name, c in credit.items()},
    }
