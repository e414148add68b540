"""Near-duplicate documents: MinHash signatures of word-shingle sets, candidates from LSH, kept-first.

Broder 1997 ("On the resemblance and containment of documents") for MinHash; Lee et al. 2022
("Deduplicating Training Data Makes Language Models Better", arXiv 2107.06499) for the recipe: word 5-gram
shingles, Jaccard 0.8. A later document whose estimated Jaccard similarity with an earlier kept one reaches the
threshold is flagged; LSH only proposes candidates, and each is checked against the signature estimate, so the
threshold means what it says rather than the LSH S-curve's blur around it.
"""

from __future__ import annotations

import zlib

import numpy as np
from datasketch import MinHash, MinHashLSH

from masklab.config import FilterConfig

NUM_PERM = 128  # signature length: the Jaccard estimate's standard error is sqrt(J(1-J)/128), 0.035 at J=0.8
_BATCH = 20_000  # shingles hashed per call: update_batch holds a (batch, NUM_PERM) array, 20 MB at this size


def shingles(text: str, n: int) -> set[bytes]:
    """The set of word n-grams of `text` (lowercased; a text shorter than n words is one shingle)."""
    words = text.lower().split()
    if len(words) <= n:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


class NearDup:
    """Flags a document that nearly repeats an earlier unflagged one; stateful, so it runs last in the chain (a
    document it does not flag is kept, and remembered)."""

    def __init__(self, cfg: FilterConfig):
        self.n = cfg.near_dup_shingle
        self.threshold = cfg.near_dup_threshold
        self.lsh = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM)
        # fixed seed: the same corpus gives the same verdicts; crc32 (a C builtin) hashes shingles 3x faster than
        # datasketch's default sha1 wrapper, and the permutations re-hash its values anyway
        self._template = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=zlib.crc32)
        self.signatures: list[np.ndarray] = []  # uint32 (NUM_PERM,) per remembered document: 512 bytes each

    def signature(self, text: str) -> MinHash:
        m = self._template.copy()
        grams = list(shingles(text, self.n))
        for start in range(0, len(grams), _BATCH):
            m.update_batch(grams[start : start + _BATCH])
        return m

    def flags(self, text: str) -> bool:
        m = self.signature(text)
        values = m.hashvalues
        for key in self.lsh.query(m):
            if np.mean(self.signatures[int(key)] == values) >= self.threshold:
                return True
        self.lsh.insert(str(len(self.signatures)), m)
        self.signatures.append(values)
        return False
