"""Tokenise once into flat token shards on disk, and read fixed-length packed blocks from them.

Layout of a shard directory (cached by corpus digest + tokenizer digest):
    train.bin / val.bin   every document's token ids followed by [SEP], back to back (uint16 or uint32)
    train.words.bin ...   one uint8 per token: 1 where the token starts a word (from the tokenizer's word ids)
    train.NAME-KEY.npy    optional per-token sidecars a masker asks for (POS ids, phrase units), built on first
                          use by `ensure_sidecar` and cached under a key of their settings
    unigram.npy           token counts of the training split (the unigram baseline, masking statistics)
    meta.json             dtype, token and document counts
Training reads the .bin files through numpy memmaps, so memory does not grow with corpus size.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from masklab.data.prepare import PreparedCorpus
from masklab.data.tokenizer import tokenizer_digest
from masklab.errors import UserError
from masklab.fsutil import atomic_path, publish, staged_directory

SHARD_VERSION = 2  # 2: word-start sidecar and the cleaned corpus' location in meta.json
ENCODE_BATCH = 512  # documents per encode_batch call: large enough to keep the Rust threads busy


@dataclass(frozen=True)
class Shards:
    directory: Path
    meta: dict

    def tokens(self, split: str) -> np.ndarray:
        n = self.meta[f"{split}_tokens"]
        if n == 0:
            return np.zeros(0, dtype=self.meta["dtype"])
        return np.memmap(self.directory / f"{split}.bin", dtype=self.meta["dtype"], mode="r", shape=(n,))

    def unigram_counts(self) -> np.ndarray:
        return np.load(self.directory / "unigram.npy")

    def sidecar(self, split: str, name: str) -> np.ndarray:
        """A per-token uint8 sidecar (e.g. "words"), aligned with `tokens(split)`."""
        n = self.meta[f"{split}_tokens"]
        if n == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(self.directory / f"{split}.{name}.bin", dtype=np.uint8, mode="r", shape=(n,))

    def encoded_documents(self, split: str, tokenizer) -> Iterator[tuple[int, str, object]]:
        """(position of the document's first token in the split, text, `tokenizers.Encoding`) per document,
        re-encoded exactly as at tokenisation: for sidecars that need character offsets (taggers)."""

        if tokenizer_digest(tokenizer) != self.meta["tokenizer"]:
            raise UserError(
                "the tokenizer differs from the one these token shards were made with; "
                "use the run's own tokenizer (tokenizer.path) or let masklab rebuild the shards"
            )
        corpus_dir = Path(self.meta["corpus_dir"])
        if not (corpus_dir / f"{split}.jsonl").exists():
            raise UserError(
                f"the cleaned corpus behind {self.directory} is gone from the cache ({corpus_dir}); "
                f"delete {self.directory} so masklab prepares the corpus and shards again"
            )
        docs = PreparedCorpus(corpus_dir, self.meta["corpus"], {}).documents(split)
        position = 0
        while batch := list(islice(docs, ENCODE_BATCH)):
            for text, enc in zip(batch, tokenizer.backend_tokenizer.encode_batch(batch, add_special_tokens=False)):
                yield position, text, enc
                position += len(enc.ids) + 1  # the [SEP] after every document
        if position != self.meta[f"{split}_tokens"]:
            raise UserError(
                f"re-encoding the {split} split gave {position} tokens, the shards hold {self.meta[f'{split}_tokens']}"
                "; "
                f"delete {self.directory} so masklab tokenises the corpus again"
            )


def word_starts(word_ids: list) -> np.ndarray:
    """1 where a token begins a new word of the tokenizer's pre-tokenizer (any model: WordPiece, BPE,
    Unigram; any script), from `Encoding.word_ids`."""
    ids = np.asarray(word_ids, dtype=np.int64)
    starts = np.ones(len(ids), dtype=np.uint8)
    starts[1:] = ids[1:] != ids[:-1]
    return starts


def unpadded_backend(tokenizer) -> Tokenizer:
    """A copy of the fast tokenizer's backend that neither pads nor truncates: a checkpoint's tokenizer.json
    may do both to every encoding (sentence encoders: 128), which raw `encode_batch` calls would inherit."""
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def _tokenize_split(
    corpus: PreparedCorpus, split: str, tokenizer, out: Path, dtype, counts: np.ndarray, progress
) -> tuple[int, int]:
    backend = unpadded_backend(tokenizer)
    sep = tokenizer.sep_token_id
    n_tokens = n_docs = 0
    docs = corpus.documents(split)
    words_path = out.with_name(out.stem + ".words.bin")
    with out.open("wb") as f, words_path.open("wb") as fw:
        while batch := list(islice(docs, ENCODE_BATCH)):
            encodings = backend.encode_batch(batch, add_special_tokens=False)
            ids = np.fromiter((i for enc in encodings for i in (*enc.ids, sep)), dtype=np.int64)
            counts += np.bincount(ids, minlength=len(counts))[: len(counts)]
            f.write(ids.astype(dtype).tobytes())
            fw.write(
                np.concatenate([np.append(word_starts(enc.word_ids), 1) for enc in encodings])
                .astype(np.uint8)
                .tobytes()
            )
            n_tokens += len(ids)
            n_docs += len(batch)
            progress.update(len(batch))
    return n_tokens, n_docs


def build_shards(corpus: PreparedCorpus, tokenizer, tok_digest: str, cache: Path, show_progress: bool = True) -> Shards:
    """Tokenise the prepared corpus into shards, or reuse the cached ones for the same content."""

    key = f"{corpus.digest}-{tok_digest}-v{SHARD_VERSION}"
    final = cache / "shards" / key
    if (final / "meta.json").exists():
        return Shards(final, json.loads((final / "meta.json").read_text()))
    vocab = len(tokenizer)
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max else np.uint32
    counts = np.zeros(vocab, dtype=np.int64)
    total = corpus.stats["train_docs"] + corpus.stats["val_docs"]
    with staged_directory(final.parent, ".shard-") as tmp:
        with tqdm(total=total, desc="tokenising", unit="doc", disable=not show_progress) as bar:
            train_tokens, train_docs = _tokenize_split(
                corpus, "train", tokenizer, tmp / "train.bin", dtype, counts, bar
            )
            val_tokens, val_docs = _tokenize_split(
                corpus, "val", tokenizer, tmp / "val.bin", dtype, np.zeros_like(counts), bar
            )
        np.save(tmp / "unigram.npy", counts)
        meta = {
            "dtype": np.dtype(dtype).name,
            "vocab_size": vocab,
            "train_tokens": train_tokens,
            "train_docs": train_docs,
            "val_tokens": val_tokens,
            "val_docs": val_docs,
            "corpus": corpus.digest,
            "tokenizer": tok_digest,
            "corpus_dir": str(corpus.directory.resolve()),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        publish(tmp, final)
    return Shards(final, meta)


@dataclass(frozen=True)
class Sidecar:
    """A per-token uint8 array stored beside the token shards, built on first use and cached.

    `key` names the settings it was built with (tagger, gazetteer digest, PMI settings), so runs with
    other settings never read it; `build(shards, split, tokenizer, out, show_progress)` fills `out`.
    """

    name: str  # the batch feature it provides, e.g. "pos"
    key: str
    cls_value: int  # the value at the [CLS] that starts every packed block
    build: Callable[..., None]


def sidecar_path(shards: Shards, split: str, sidecar: Sidecar) -> Path:
    return shards.directory / f"{split}.{sidecar.name}-{sidecar.key}.npy"


def ensure_sidecar(shards: Shards, split: str, sidecar: Sidecar, tokenizer, show_progress: bool = True) -> np.ndarray:
    """The sidecar's memmap, building it first if no process has yet (a file lock makes the others wait)."""
    path = sidecar_path(shards, split, sidecar)
    n = shards.meta[f"{split}_tokens"]
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    if not path.exists():
        with open(shards.directory / f".{sidecar.name}-{sidecar.key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                with atomic_path(path) as tmp:
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n,))
                    sidecar.build(shards, split, tokenizer, out, show_progress)
                    out.flush()
                    del out
    return np.load(path, mmap_mode="r")


class PackedBlocks:
    """Fixed-length blocks `[CLS] t_1 ... t_{T-1}` cut back to back from a token stream.

    Every token is used (no padding); documents stay separated by the [SEP] written after each one.
    Per-token features (word starts, and sidecars a masker attaches) are cut into the same blocks.
    """

    def __init__(
        self, tokens: np.ndarray, seq_length: int, cls_id: int, shards: Shards | None = None, split: str = "train"
    ):
        self.tokens = tokens
        self.span = seq_length - 1
        self.seq_length = seq_length
        self.cls_id = cls_id
        self.n_blocks = len(tokens) // self.span
        self.shards = shards
        self.split = split
        self.features: dict[str, tuple[np.ndarray, int]] = {}  # name -> (per-token values, value at [CLS])
        self.feature_keys: dict[str, str] = {}  # name -> key of the sidecar it came from
        if shards is not None:
            self.features["words"] = (shards.sidecar(split, "words"), 1)
            self.feature_keys["words"] = "words"

    def __len__(self) -> int:
        return self.n_blocks

    def gather(self, indices) -> np.ndarray:
        """(B, T) int64 array for block indices (any order)."""
        return self._cut(self.tokens, indices, self.cls_id, np.int64)

    def gather_features(self, indices, names) -> dict[str, np.ndarray]:
        """{name: (B, T) uint8} for the same blocks as `gather(indices)`."""
        missing = [n for n in names if n not in self.features]
        if missing:
            raise ValueError(
                f"these blocks have no {', '.join(missing)} feature; build them with packed_blocks() from "
                "token shards and let the batcher attach what its masker needs (MLMBatcher.attach)"
            )
        return {n: self._cut(self.features[n][0], indices, self.features[n][1], np.uint8) for n in names}

    def attach(self, sidecar: Sidecar, tokenizer, show_progress: bool = True) -> None:
        """Make `sidecar` available to `gather_features`, building it beside the shards if needed; it
        replaces another sidecar of the same feature name (entity and PMI phrases are both "phrases")."""
        if self.feature_keys.get(sidecar.name) == sidecar.key:
            return
        if self.shards is None:
            raise ValueError(f"the {sidecar.name} feature needs blocks made from token shards (packed_blocks)")
        self.features[sidecar.name] = (
            ensure_sidecar(self.shards, self.split, sidecar, tokenizer, show_progress),
            sidecar.cls_value,
        )
        self.feature_keys[sidecar.name] = sidecar.key

    def _cut(self, values: np.ndarray, indices, cls_value: int, dtype) -> np.ndarray:
        starts = np.asarray(indices, dtype=np.int64) * self.span
        body = values[starts[:, None] + np.arange(self.span)[None, :]].astype(dtype)
        return np.concatenate([np.full((len(starts), 1), cls_value, dtype=dtype), body], axis=1)


def packed_blocks(shards: Shards, split: str, seq_length: int, cls_id: int) -> PackedBlocks:
    blocks = PackedBlocks(shards.tokens(split), seq_length, cls_id, shards, split)
    if len(blocks) == 0:
        n = shards.meta[f"{split}_tokens"]
        raise UserError(
            f"the {split} split has {n} tokens, fewer than one block of data.seq_length={seq_length}; "
            "use a larger corpus, a smaller data.seq_length, or a larger data.val_fraction"
        )
    return blocks
