"""Cleaning a corpus once: repair mojibake, normalise, filter by length, drop exact duplicates, run the cleaning
filters (masklab.data.filters), split by document.

The result is two JSON-lines files (train / validation) in the cache, named by a hash of their
content, so everything downstream (tokenizer, shards) can be cached by content too. The split is a
seeded hash of each document's text: stable under reordering and independent of the training seed.
The statistics are kept per source fingerprint as well: report-mode filters leave the content (and so the
shards) unchanged but count differently.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from masklab.config import DataConfig
from masklab.data.filters import Filters
from masklab.data.sources import iter_documents, source_files
from masklab.errors import UserError
from masklab.fsutil import publish, staged_directory, write_text_atomic
from masklab.runtime import default_cache_root

PREPARE_VERSION = 1  # bump when cleaning changes, so old caches are not reused


def cache_root(cfg: DataConfig) -> Path:
    return Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_root()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")


def clean_text(text: str, normalization: str) -> str:
    """Unicode-normalise and tidy whitespace; letters of every script (and ZWNJ) are kept."""
    if normalization != "none":
        text = unicodedata.normalize(normalization, text)
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _split_score(text: str, seed: int) -> float:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class PreparedCorpus:
    """Cleaned documents on disk: `train.jsonl` / `val.jsonl`, one JSON string per line."""

    directory: Path
    digest: str
    stats: dict

    @property
    def train_path(self) -> Path:
        return self.directory / "train.jsonl"

    @property
    def val_path(self) -> Path:
        return self.directory / "val.jsonl"

    def documents(self, split: str = "train") -> Iterator[str]:
        with (self.directory / f"{split}.jsonl").open(encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def _source_key(cfg: DataConfig) -> str | None:
    """A fingerprint of the raw corpus bytes and every setting that shapes the cleaned result: a warm cache
    finds its prepared corpus by it without cleaning and writing the corpus again. None for hub datasets."""
    files = source_files(cfg.corpus)
    if files is None:
        return None
    h = hashlib.sha256(f"v{PREPARE_VERSION}".encode())
    settings = {
        k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("seq_length", "block_diagonal", "cache_dir")
    }
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in files:
        h.update(str(path.name).encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:24]


def _known(root: Path, key: str | None) -> PreparedCorpus | None:
    if key is None or not (root / "by-source" / key).exists():
        return None
    digest = (root / "by-source" / key).read_text(encoding="utf-8").strip()
    final = root / digest
    if not (final / "stats.json").exists():
        return None
    # this source and these settings' own counts: settings that give the same content share `final`
    own = root / "by-source" / f"{key}.stats.json"
    stats_file = own if own.exists() else final / "stats.json"
    return PreparedCorpus(final, digest, json.loads(stats_file.read_text(encoding="utf-8")))


def prepare_corpus(cfg: DataConfig) -> PreparedCorpus:
    """Stream the corpus through cleaning into the cache; reuse an identical earlier result (found by the raw
    corpus's fingerprint without rewriting it, or by the cleaned content's hash). A full disk or a file-size
    limit is a one-line error, and the partial write is removed."""
    root = cache_root(cfg) / "corpora"
    root.mkdir(parents=True, exist_ok=True)
    key = _source_key(cfg)
    known = _known(root, key)
    if known is not None:
        return known
    try:
        prepared = _clean_into(root, cfg)
        if key is not None:
            (root / "by-source").mkdir(exist_ok=True)
            write_text_atomic(root / "by-source" / f"{key}.stats.json", json.dumps(prepared.stats))
            write_text_atomic(root / "by-source" / key, prepared.digest)
    except OSError as exc:
        reason = {errno.ENOSPC: "the disk is full", errno.EFBIG: "a file grew past the file-size limit"}.get(
            exc.errno, exc.strerror or str(exc)
        )
        raise UserError(
            f"could not write the prepared corpus under {root} ({reason}); free space, raise the limit or set "
            "data.cache_dir to another disk"
        ) from None
    return prepared


def _clean_into(root: Path, cfg: DataConfig) -> PreparedCorpus:
    stats = {"read": 0, "too_short": 0, "too_long": 0, "duplicates": 0, "train_docs": 0, "val_docs": 0, "chars": 0}
    seen: set[bytes] = set()
    filters = Filters(cfg.filters)
    hasher = hashlib.sha256(f"v{PREPARE_VERSION}".encode())
    best_train: tuple[float, str] | None = None  # the train document most likely to move, if val ends empty
    with staged_directory(root, ".prep-") as tmp:
        with (
            (tmp / "train.jsonl").open("w", encoding="utf-8") as ftrain,
            (tmp / "val.jsonl").open("w", encoding="utf-8") as fval,
        ):
            for raw in iter_documents(cfg.corpus, cfg.text_column, cfg.doc_split, cfg.hf_split):
                stats["read"] += 1
                text = clean_text(filters.repair(raw), cfg.normalization)
                if len(text) < max(cfg.min_chars, 1):
                    stats["too_short"] += 1
                    continue
                if cfg.max_chars and len(text) > cfg.max_chars:
                    stats["too_long"] += 1
                    continue
                if cfg.dedup:
                    key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
                    if key in seen:
                        stats["duplicates"] += 1
                        continue
                    seen.add(key)
                if not filters.admit(text):
                    continue
                score = _split_score(text, cfg.split_seed)
                line = json.dumps(text, ensure_ascii=False) + "\n"
                if score < cfg.val_fraction:
                    fval.write(line)
                    stats["val_docs"] += 1
                    hasher.update(b"V" + line.encode("utf-8"))
                else:
                    ftrain.write(line)
                    stats["train_docs"] += 1
                    hasher.update(b"T" + line.encode("utf-8"))
                    if best_train is None or score < best_train[0]:
                        best_train = (score, line)
                stats["chars"] += len(text)
                if cfg.max_documents and stats["train_docs"] + stats["val_docs"] >= cfg.max_documents:
                    break
        stats["filters"] = filters.stats()
        if stats["train_docs"] == 0:
            dropped = "".join(
                f", {f['dropped']} dropped by data.filters.{name}"
                for name, f in stats["filters"].items()
                if f.get("dropped")
            )
            raise UserError(
                f"corpus {cfg.corpus!r} has no usable documents ({stats['read']} read, {stats['too_short']} shorter "
                "than "
                f"data.min_chars={cfg.min_chars}, {stats['duplicates']} duplicates{dropped}); pass a non-empty UTF-8 "
                "corpus, lower data.min_chars or set the dropping filters to report"
            )
        if stats["val_docs"] == 0 and cfg.val_fraction > 0:
            _move_to_val(tmp, best_train[1])
            stats["train_docs"] -= 1
            stats["val_docs"] += 1
            hasher.update(b"M" + best_train[1].encode("utf-8"))
            if stats["train_docs"] == 0:
                raise UserError(
                    f"corpus {cfg.corpus!r} has a single document; a validation split needs at least two (or set "
                    "data.val_fraction=0)"
                )
        digest = hasher.hexdigest()[:20]
        final = root / digest
        (tmp / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
        publish(tmp, final, replace=False)
    return PreparedCorpus(final, digest, stats)


def _move_to_val(directory: Path, line: str) -> None:
    """Give a tiny corpus a one-document validation split (the hash split left it empty)."""
    lines = (directory / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines.remove(line)
    (directory / "train.jsonl").write_text("".join(lines), encoding="utf-8")
    (directory / "val.jsonl").write_text(line, encoding="utf-8")


_SENTENCE_END = re.compile(r"(?<=[.!?؟۔])\s+")


def training_lines(corpus: PreparedCorpus, max_chars: int = 1000) -> Iterator[str]:
    """Train-split text as lines of bounded length: tokenizer trainers choke on megabyte lines."""
    for doc in corpus.documents("train"):
        for line in doc.split("\n"):
            if len(line) <= max_chars:
                yield line
                continue
            chunk = ""
            for sentence in _SENTENCE_END.split(line):
                if chunk and len(chunk) + len(sentence) > max_chars:
                    yield chunk
                    chunk = ""
                chunk = f"{chunk} {sentence}" if chunk else sentence
            if chunk:
                yield chunk


def sample_lines(corpus: PreparedCorpus, n: int = 64, max_chars: int = 400) -> list[str]:
    """The first `n` lines of the validation split (else train), cut to `max_chars`: a preflight sample."""
    out: list[str] = []
    for split in ("val", "train"):
        for doc in corpus.documents(split):
            out += [line[:max_chars] for line in doc.split("\n") if line.strip()][: n - len(out)]
            if len(out) >= n:
                return out
    return out
