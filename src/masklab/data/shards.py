"""Tokenise once into flat token shards on disk, and read fixed-length packed blocks from them.

Layout of a shard directory (cached by corpus digest + tokenizer digest):
    train.bin / val.bin   every document's token ids followed by [SEP], back to back (uint16 or uint32)
    unigram.npy           token counts of the training split (the unigram baseline, masking statistics)
    meta.json             dtype, token and document counts
Training reads the .bin files through numpy memmaps, so memory does not grow with corpus size.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from masklab.data.prepare import PreparedCorpus
from masklab.errors import UserError

SHARD_VERSION = 1
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


def _tokenize_split(corpus: PreparedCorpus, split: str, tokenizer, out: Path, dtype, counts: np.ndarray, progress) -> tuple[int, int]:
    backend = tokenizer.backend_tokenizer
    sep = tokenizer.sep_token_id
    n_tokens = n_docs = 0
    docs = corpus.documents(split)
    with out.open("wb") as f:
        while batch := list(islice(docs, ENCODE_BATCH)):
            encodings = backend.encode_batch(batch, add_special_tokens=False)
            ids = np.fromiter((i for enc in encodings for i in (*enc.ids, sep)), dtype=np.int64)
            counts += np.bincount(ids, minlength=len(counts))[: len(counts)]
            f.write(ids.astype(dtype).tobytes())
            n_tokens += len(ids)
            n_docs += len(batch)
            progress.update(len(batch))
    return n_tokens, n_docs


def build_shards(corpus: PreparedCorpus, tokenizer, tok_digest: str, cache: Path, show_progress: bool = True) -> Shards:
    """Tokenise the prepared corpus into shards, or reuse the cached ones for the same content."""
    from tqdm.auto import tqdm

    key = f"{corpus.digest}-{tok_digest}-v{SHARD_VERSION}"
    final = cache / "shards" / key
    if (final / "meta.json").exists():
        return Shards(final, json.loads((final / "meta.json").read_text()))
    final.parent.mkdir(parents=True, exist_ok=True)
    vocab = len(tokenizer)
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max else np.uint32
    counts = np.zeros(vocab, dtype=np.int64)
    tmp = Path(tempfile.mkdtemp(prefix=".shard-", dir=final.parent))
    total = corpus.stats["train_docs"] + corpus.stats["val_docs"]
    try:
        with tqdm(total=total, desc="tokenising", unit="doc", disable=not show_progress) as bar:
            train_tokens, train_docs = _tokenize_split(corpus, "train", tokenizer, tmp / "train.bin", dtype, counts, bar)
            val_tokens, val_docs = _tokenize_split(corpus, "val", tokenizer, tmp / "val.bin", dtype, np.zeros_like(counts), bar)
        np.save(tmp / "unigram.npy", counts)
        meta = {"dtype": np.dtype(dtype).name, "vocab_size": vocab, "train_tokens": train_tokens, "train_docs": train_docs,
                "val_tokens": val_tokens, "val_docs": val_docs, "corpus": corpus.digest, "tokenizer": tok_digest}
        (tmp / "meta.json").write_text(json.dumps(meta))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Shards(final, meta)


class PackedBlocks:
    """Fixed-length blocks `[CLS] t_1 ... t_{T-1}` cut back to back from a token stream.

    Every token is used (no padding); documents stay separated by the [SEP] written after each one.
    """

    def __init__(self, tokens: np.ndarray, seq_length: int, cls_id: int):
        self.tokens = tokens
        self.span = seq_length - 1
        self.seq_length = seq_length
        self.cls_id = cls_id
        self.n_blocks = len(tokens) // self.span

    def __len__(self) -> int:
        return self.n_blocks

    def gather(self, indices) -> np.ndarray:
        """(B, T) int64 array for block indices (any order)."""
        starts = np.asarray(indices, dtype=np.int64) * self.span
        body = self.tokens[starts[:, None] + np.arange(self.span)[None, :]].astype(np.int64)
        return np.concatenate([np.full((len(starts), 1), self.cls_id, dtype=np.int64), body], axis=1)


def packed_blocks(shards: Shards, split: str, seq_length: int, cls_id: int) -> PackedBlocks:
    blocks = PackedBlocks(shards.tokens(split), seq_length, cls_id)
    if len(blocks) == 0:
        n = shards.meta[f"{split}_tokens"]
        raise UserError(f"the {split} split has {n} tokens, fewer than one block of data.seq_length={seq_length}; "
                        "use a larger corpus, a smaller data.seq_length, or a larger data.val_fraction")
    return blocks
