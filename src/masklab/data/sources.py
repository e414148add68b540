"""Reading raw documents from wherever the user keeps them.

A corpus spec is a file (.txt, .jsonl, .csv/.tsv, .parquet, optionally .gz), a directory of such
files, `builtin:NAME` (shipped in the package), or `hf:NAME` (a Hugging Face dataset, loaded with
`datasets`). Every reader yields one document at a time, so memory stays flat in corpus size.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Iterator

from masklab.errors import UserError

TEXT_SUFFIXES = {".txt", ".text", ".md"}
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}
PARQUET_SUFFIXES = {".parquet"}
SUPPORTED = TEXT_SUFFIXES | JSONL_SUFFIXES | CSV_SUFFIXES | PARQUET_SUFFIXES

# Built-in corpora: name -> (resource file, text field). Provenance and licenses: resources/SOURCES.md.
BUILTIN_CORPORA = {
    "sotu": ("sotu.jsonl.gz", "text"),  # State of the Union addresses 1790-2021, public domain
    "rt": ("rotten_tomatoes.jsonl.gz", "text"),  # Rotten Tomatoes review snippets (English)
    "fa-chat": ("fa_chatterbot.jsonl.gz", "text"),  # Persian utterances (chatterbot-corpus, BSD-3)
    "en-chat": (
        "en_chatterbot.jsonl.gz",
        "text",
    ),  # English utterances (chatterbot-corpus, BSD-3): general text beside the tasks
}


def resource_path(name: str) -> Path:
    return Path(str(resources.files("masklab") / "resources" / name))


def split_suffix(path: Path) -> tuple[str, bool]:
    """The format suffix and whether the file is gzip-compressed (`a.jsonl.gz` -> ('.jsonl', True))."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        return (suffixes[-2] if len(suffixes) > 1 else ""), True
    return (suffixes[-1] if suffixes else ""), False


def open_text(path: Path, gz: bool) -> io.TextIOBase:
    raw = path.open("rb")
    head = raw.read(8192)
    raw.seek(0)
    if gz:
        raw = gzip.open(raw)
        try:
            head = raw.read(8192)
        except OSError:
            raise UserError(f"{path} ends in .gz but is not gzip data; decompress or rename it") from None
        raw.seek(0)
    if b"\x00" in head:
        raise UserError(f"{path} looks binary (it contains NUL bytes); pass a UTF-8 text file")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def guard_utf8(path: Path, lines: Iterator) -> Iterator:
    try:
        yield from lines
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path} is not UTF-8 text ({exc.reason}, byte {exc.object[exc.start : exc.start + 1]!r}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8 IN > OUT"
        ) from None


def _read_txt(path: Path, gz: bool, doc_split: str) -> Iterator[str]:
    with open_text(path, gz) as f:
        if doc_split == "line":
            for line in guard_utf8(path, f):
                if line.strip():
                    yield line
            return
        block: list[str] = []
        for line in guard_utf8(path, f):
            if line.strip():
                block.append(line)
            elif block:
                yield "".join(block)
                block = []
        if block:
            yield "".join(block)


def _column(record: dict, column: str, path: Path, where: str) -> str:
    if column not in record:
        raise UserError(
            f"{path} {where} has no column {column!r} (columns: {', '.join(map(str, record)) or 'none'}); "
            "set data.text_column"
        )
    value = record[column]
    return "" if value is None else str(value)


def iter_json_records(path: Path, gz: bool) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-empty line of a JSON-lines file."""
    with open_text(path, gz) as f:
        for n, line in enumerate(guard_utf8(path, f), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path} line {n} is not valid JSON ({exc.msg}); one JSON object per line") from None
            if not isinstance(record, dict):
                raise UserError(f"{path} line {n} is not a JSON object; write one object per line")
            yield n, record


def _read_jsonl(path: Path, gz: bool, column: str) -> Iterator[str]:
    for n, record in iter_json_records(path, gz):
        yield _column(record, column, path, f"line {n}")


def iter_csv_rows(path: Path, gz: bool, suffix: str) -> Iterator[dict]:
    """Rows of a .csv / .tsv file (header first) as dicts."""
    csv.field_size_limit(sys.maxsize)
    with open_text(path, gz) as f:
        yield from csv.DictReader(guard_utf8(path, f), delimiter="\t" if suffix == ".tsv" else ",")


def _read_csv(path: Path, gz: bool, column: str, suffix: str) -> Iterator[str]:
    for row in iter_csv_rows(path, gz, suffix):
        yield _column(row, column, path, "header")


def open_parquet(path: Path):
    """A pyarrow ParquetFile, or one clear error for a missing extra or a damaged file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("reading .parquet needs pyarrow: pip install 'masklab[hub]'") from None
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{path} is not a readable parquet file ({type(exc).__name__}); check the file") from None


def _read_parquet(path: Path, column: str) -> Iterator[str]:
    table = open_parquet(path)
    if column not in table.schema_arrow.names:
        raise UserError(
            f"{path} has no column {column!r} (columns: {', '.join(table.schema_arrow.names)}); set data.text_column"
        )
    for batch in table.iter_batches(columns=[column], batch_size=1024):
        for value in batch.column(0).to_pylist():
            yield "" if value is None else str(value)


def read_file(path: Path, column: str = "text", doc_split: str = "blank_line") -> Iterator[str]:
    suffix, gz = split_suffix(path)
    if suffix in TEXT_SUFFIXES or (suffix == "" and not gz):
        return _read_txt(path, gz, doc_split)
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, gz, column)
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, gz, column, suffix)
    if suffix in PARQUET_SUFFIXES and not gz:
        return _read_parquet(path, column)
    raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(sorted(SUPPORTED))}")


def _read_hf(name: str, column: str, split: str) -> Iterator[str]:
    try:
        import datasets
    except ImportError:
        raise UserError("Hugging Face dataset corpora need `datasets`: pip install 'masklab[hub]'") from None
    dataset_name, _, config_name = name.partition(":")
    try:
        ds = datasets.load_dataset(dataset_name, config_name or None, split=split, streaming=True)
    except Exception as exc:  # offline, unknown name, bad split: datasets raises many types
        raise UserError(
            f"could not load Hugging Face dataset {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
            "check the name and your connection"
        ) from None
    for record in ds:
        yield _column(record, column, Path(f"hf:{name}"), "record")


def source_files(spec: str) -> list[Path] | None:
    """The local files a corpus spec reads, in reading order; None for a hub dataset (no cheap fingerprint)
    or a spec that does not resolve (iter_documents then says what is wrong)."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        return [resource_path(BUILTIN_CORPORA[name][0])] if name in BUILTIN_CORPORA else None
    path = Path(spec).expanduser()
    if spec.startswith("hf:") or not path.exists():
        return None
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and split_suffix(p)[0] in SUPPORTED) or None
    return [path]


def iter_documents(
    spec: str, column: str = "text", doc_split: str = "blank_line", hf_split: str = "train"
) -> Iterator[str]:
    """Yield raw document strings from a corpus spec (see module docstring)."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_CORPORA:
            raise UserError(f"unknown built-in corpus {name!r}; choose one of: {', '.join(sorted(BUILTIN_CORPORA))}")
        filename, field_name = BUILTIN_CORPORA[name]
        yield from read_file(resource_path(filename), field_name)
        return
    if spec.startswith("hf:"):
        yield from _read_hf(spec[3:], column, hf_split)
        return
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"corpus {spec!r} does not exist; pass a file, a directory, builtin:sotu or hf:DATASET_NAME")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and split_suffix(p)[0] in SUPPORTED)
        if not files:
            raise UserError(f"directory {path} holds no corpus files ({', '.join(sorted(SUPPORTED))}, optionally .gz)")
        for file in files:
            yield from read_file(file, column, doc_split)
        return
    yield from read_file(path, column, doc_split)
