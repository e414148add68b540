"""Labelled tasks for fine-tuning: built-in ones shipped in the package, and the user's own files.

A task is three splits of examples plus the label set read from the training split. Sequence tasks
have a text (or a text pair) and one label per example; token tasks have a list of words and one
tag per word (CoNLL files: `token ... tag` per line, a blank line between sentences).

Splits that are not given as files are carved out of the training file with a seeded, stratified
split (every label keeps at least one training example), so every seed and every initialisation of
a comparison is tested on the same examples. Provenance of the built-in tasks: resources/SOURCES.md.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from masklab.data.sources import (
    guard_utf8,
    iter_csv_rows,
    iter_json_records,
    open_parquet,
    open_text,
    resource_path,
    split_suffix,
)
from masklab.errors import UserError

TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".ndjson", ".parquet"}
CONLL_SUFFIXES = {".conll", ".iob", ".bio", ".bioes"}


@dataclass
class Split:
    texts: list  # str per example (sequence tasks) or list[str] of words (token tasks)
    labels: list  # str per example, or list[str] of tags per example
    pairs: list[str] | None = None  # second text per example for pair tasks


@dataclass
class Task:
    name: str
    kind: Literal["sequence", "token"]
    label_names: list[str]  # class id -> label, read from the training split
    train: Split
    validation: Split
    test: Split

    def label_ids(self, split: Split) -> list:
        index = {name: i for i, name in enumerate(self.label_names)}
        if self.kind == "token":
            return [[index[t] for t in tags] for tags in split.labels]
        return [index[label] for label in split.labels]


def flatten_labels(labels: list, kind: str) -> list:
    """One label per example (sequence tasks), or every tag of every example in order (token tasks)."""
    return [t for tags in labels for t in tags] if kind == "token" else list(labels)


@dataclass
class Examples:
    """What a reader returns before splitting; `groups` keeps related examples (one speech) in one split."""

    texts: list
    labels: list
    pairs: list[str] | None = None
    groups: list | None = None


# ---- built-in tasks ---------------------------------------------------------------------------------


def _read_resource(name: str) -> list[dict]:
    return [record for _, record in iter_json_records(resource_path(name), gz=True)]


def _rt_sentiment() -> Examples:
    rows = _read_resource("rotten_tomatoes.jsonl.gz")
    return Examples([r["text"] for r in rows], [r["label"] for r in rows])


def _fa_topic() -> Examples:
    rows = _read_resource("fa_chatterbot.jsonl.gz")
    return Examples([r["text"] for r in rows], [r["label"] for r in rows])


# Periods with clearly different agendas and language; bounds are inclusive years. Documented in SOURCES.md.
SOTU_ERAS = {
    "1790-1860": (1790, 1860),  # Washington to Buchanan: early republic and antebellum, written messages
    "1861-1932": (1861, 1932),  # Lincoln to Hoover: Civil War, Reconstruction, industrial era, WWI
    "1933-1980": (1933, 1980),  # Roosevelt to Carter: New Deal, WWII, Cold War
    "1981-2021": (1981, 2021),  # Reagan to Biden: the modern televised address
}
SOTU_SENTENCES_PER_PASSAGE = 3
_SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=[A-Z"])')


def _sotu_passages(label_of: Callable[[dict], str | None]) -> Examples:
    """Passages of three consecutive sentences of each address `label_of` labels (None = left out). Every
    label is downsampled (seed 0) to the smallest label's passage count, so the task is balanced and fixed;
    `groups` keeps an address's passages in one split."""
    texts, labels, groups = [], [], []
    for n, row in enumerate(_read_resource("sotu.jsonl.gz")):
        label = label_of(row)
        if label is None:
            continue
        sentences = _SENTENCE_END.split(row["text"].strip())
        k = SOTU_SENTENCES_PER_PASSAGE
        for i in range(0, len(sentences) - k + 1, k):
            texts.append(" ".join(sentences[i : i + k]))
            labels.append(label)
            groups.append(n)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    size = min(len(v) for v in by_label.values())
    rng = random.Random(0)
    keep = sorted(i for idx in by_label.values() for i in rng.sample(idx, size))
    return Examples([texts[i] for i in keep], [labels[i] for i in keep], groups=[groups[i] for i in keep])


def _sotu_era() -> Examples:
    return _sotu_passages(
        lambda row: next((name for name, (lo, hi) in SOTU_ERAS.items() if lo <= int(row["year"]) <= hi), None)
    )


SOTU_PARTIES = (
    "Democratic",
    "Republican",
)  # the two parties of every address since 1853; others (Whig, Federalist...) left out


def _sotu_party() -> Examples:
    return _sotu_passages(lambda row: row["party"] if row["party"] in SOTU_PARTIES else None)


BUILTIN_TASKS: dict[str, Callable[[], Examples]] = {
    "rt-sentiment": _rt_sentiment,  # Rotten Tomatoes snippets: fresh vs rotten (12.8k)
    "sotu-era": _sotu_era,  # State of the Union passages: which of four eras (balanced, split by speech)
    # State of the Union passages: Democratic or Republican president (balanced, split by speech)
    "sotu-party": _sotu_party,
    "fa-topic": _fa_topic,  # Persian chatterbot utterances: 17 topics (3.2k)
}


# ---- users' files -------------------------------------------------------------------------------------


def _table_rows(path: Path) -> list[dict]:
    suffix, gz = split_suffix(path)
    if suffix == ".parquet":
        return open_parquet(path).read().to_pylist()
    if suffix in (".csv", ".tsv"):
        return list(iter_csv_rows(path, gz, suffix))
    return [record for _, record in iter_json_records(path, gz)]


def _read_table(path: Path, text_column: str, pair_column: str, label_column: str) -> Examples:
    rows = _table_rows(path)
    if not rows:
        raise UserError(f"{path} has no rows; a task file needs a header/keys and at least one example")
    columns = [c for c in (text_column, pair_column, label_column) if c]
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        flag = {text_column: "text_column", pair_column: "text_pair_column", label_column: "label_column"}
        raise UserError(
            f"{path} has no column {missing[0]!r} (columns: {', '.join(map(str, rows[0]))}); "
            f"set --set {flag[missing[0]]}=NAME"
        )
    texts, labels, pairs = [], [], []
    for n, row in enumerate(rows, 1):
        label = row.get(label_column)
        if label is None or str(label).strip() == "":
            raise UserError(
                f"{path} example {n} has no value in label column {label_column!r}; fill it in or drop the row"
            )
        texts.append("" if row.get(text_column) is None else str(row[text_column]))
        labels.append(str(label).strip())
        if pair_column:
            pairs.append("" if row.get(pair_column) is None else str(row[pair_column]))
    return Examples(texts, labels, pairs if pair_column else None)


def _read_conll(path: Path) -> Examples:
    """One `token ... tag` line per word (token first, tag last), blank lines between sentences."""
    _, gz = split_suffix(path)
    sentences, tags, words, word_tags = [], [], [], []
    with open_text(path, gz) as f:
        for n, line in enumerate(guard_utf8(path, f), 1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if words:
                    sentences.append(words)
                    tags.append(word_tags)
                words, word_tags = [], []
                continue
            if len(fields) < 2:
                raise UserError(
                    f"{path} line {n} has no tag ({line.strip()!r}); CoNLL lines are 'token tag', "
                    "with a blank line between sentences"
                )
            words.append(fields[0])
            word_tags.append(fields[-1])
    if words:
        sentences.append(words)
        tags.append(word_tags)
    if not sentences:
        raise UserError(f"{path} holds no tagged sentences; CoNLL lines are 'token tag', blank line between sentences")
    return Examples(sentences, tags)


def task_kind(spec: str) -> Literal["sequence", "token"]:
    return "token" if split_suffix(Path(spec))[0] in CONLL_SUFFIXES else "sequence"


def read_examples(spec: str, text_column: str, pair_column: str, label_column: str) -> Examples:
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_TASKS:
            raise UserError(
                f"unknown built-in task {name!r}; choose one of: {', '.join(f'builtin:{n}' for n in BUILTIN_TASKS)}"
            )
        return BUILTIN_TASKS[name]()
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"task file {spec!r} does not exist; pass a CSV/TSV/JSONL/parquet or CoNLL file, "
            f"or one of {', '.join(f'builtin:{n}' for n in BUILTIN_TASKS)}"
        )
    suffix = split_suffix(path)[0]
    if suffix in CONLL_SUFFIXES:
        return _read_conll(path)
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, text_column, pair_column, label_column)
    raise UserError(
        f"{path}: unsupported task file type {suffix or '(none)'}; use one of "
        f"{', '.join(sorted(TABLE_SUFFIXES | CONLL_SUFFIXES))}"
    )


# ---- splits -------------------------------------------------------------------------------------------


def _dedup(ex: Examples) -> Examples:
    """Drop repeated inputs so a test example cannot also sit in the training split."""
    seen, keep = set(), []
    for i, text in enumerate(ex.texts):
        key = (tuple(text) if isinstance(text, list) else text, ex.pairs[i] if ex.pairs else None)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return _subset(ex, keep)


def _subset(ex: Examples, idx: list[int]) -> Examples:
    return Examples(
        [ex.texts[i] for i in idx],
        [ex.labels[i] for i in idx],
        [ex.pairs[i] for i in idx] if ex.pairs is not None else None,
        [ex.groups[i] for i in idx] if ex.groups is not None else None,
    )


def carve_splits(
    ex: Examples, val_fraction: float, test_fraction: float, seed: int, stratify: bool
) -> tuple[Examples, Examples, Examples]:
    """Seeded split by group (an example is its own group unless the task says otherwise), stratified by
    label: each label's groups are shuffled and a share goes to validation and test, at least one stays."""
    groups = ex.groups if ex.groups is not None else list(range(len(ex.texts)))
    label_of_group: dict = {}
    members: dict = {}
    for i, g in enumerate(groups):
        label_of_group.setdefault(g, ex.labels[i] if stratify else "")
        members.setdefault(g, []).append(i)
    by_label: dict = {}
    for g, label in label_of_group.items():
        by_label.setdefault(label, []).append(g)
    rng = random.Random(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in sorted(by_label):
        gs = by_label[label]
        rng.shuffle(gs)
        n_val = min(round(val_fraction * len(gs)), max(0, len(gs) - 1))
        n_test = min(round(test_fraction * len(gs)), max(0, len(gs) - 1 - n_val))
        for part, chosen in zip(parts, (gs[n_val + n_test :], gs[:n_val], gs[n_val : n_val + n_test])):
            part.extend(i for g in chosen for i in members[g])
    return tuple(_subset(ex, sorted(p)) for p in parts)


def _label_names(labels: list) -> list[str]:
    names = set(labels)
    if all(n.lstrip("-").isdigit() for n in names):  # numeric labels in numeric order: 2 before 10
        return sorted(names, key=int)
    return sorted(names)


def _check_labels(split: Examples, known: set, kind: str, where: str) -> None:
    seen = set(flatten_labels(split.labels, kind))
    unknown = sorted(seen - known)
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
        raise UserError(
            f"{where} has labels that never occur in the training data: {shown}; "
            "every label needs training examples (fix the labels or add training examples)"
        )


def load_task(
    spec: str,
    validation: str = "",
    test: str = "",
    text_column: str = "text",
    pair_column: str = "",
    label_column: str = "label",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
) -> Task:
    """The task's train/validation/test splits; files given for validation/test are used as they are."""
    kind = "sequence" if spec.startswith("builtin:") else task_kind(spec)
    for extra in (validation, test):
        if extra and task_kind(extra) != kind:
            raise UserError(
                f"{extra} is a {task_kind(extra)} task file but {spec} is a {kind} task; use the same format"
            )
    data = read_examples(spec, text_column, pair_column, label_column)
    carve_val = 0.0 if validation else val_fraction
    carve_test = 0.0 if test else test_fraction
    train, val, tst = carve_splits(_dedup(data), carve_val, carve_test, split_seed, stratify=kind == "sequence")
    if validation:
        val = read_examples(validation, text_column, pair_column, label_column)
    if test:
        tst = read_examples(test, text_column, pair_column, label_column)
    names = _label_names(flatten_labels(train.labels, kind))
    if len(names) < 2:
        raise UserError(
            f"{spec} has {len(names)} label in its training data ({', '.join(names)}); classification needs at least 2"
        )
    for split, where in ((val, validation or "the validation split"), (tst, test or "the test split")):
        if not split.texts:
            raise UserError(f"{where} is empty; give more examples or raise val_fraction / test_fraction")
        _check_labels(split, set(names), kind, where)
    return Task(spec, kind, names, *(Split(e.texts, e.labels, e.pairs) for e in (train, val, tst)))
