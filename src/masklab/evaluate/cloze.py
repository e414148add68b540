"""Cloze: fill one blanked word of a held-out sentence, given both sides, out of five candidates.

Items come from the validation documents: a sentence of 8-40 words, one word blanked (a plain word,
no punctuation attached, in the corpus's mid-frequency band so the answer is neither a stop word nor
a rarity), and four distractors of about the answer's frequency (within 25 ranks), so a model that
only knows word frequencies stays near chance. Every objective ranks the same five
candidates: a masked LM by filling the gap natively (the candidate's tokens at [MASK]s, left to
right), an encoder-decoder by decoding the candidate after the sentinel standing in the gap, a causal
LM by the log-likelihood of each completed sentence (it reads the words after the gap too). Chance is
1 / 5; the accuracy compares objectives directly.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import islice

import numpy as np

SENTENCE_END = re.compile(r"(?<=[.!?؟])\s+")
WORD = re.compile(r"^\w+$")


@dataclass(frozen=True)
class ClozeItem:
    left: str
    answer: str
    right: str
    candidates: tuple[str, ...]  # the answer first, then the distractors


def word_band(train_docs, max_docs: int = 5000, skip: int = 50, size: int = 2000) -> list[str]:
    """The corpus's words ranked skip..skip+size by frequency (lowercased, plain words only)."""
    counts = Counter(w for doc in islice(train_docs, max_docs) for w in doc.lower().split() if WORD.match(w))
    return [w for w, c in counts.most_common(skip + size)[skip:] if c >= 3]


def cloze_items(val_docs, band: list[str], n: int, seed: int = 0, distractors: int = 4) -> list[ClozeItem]:
    """Up to `n` items from the validation documents, deterministic for `seed`."""
    if len(band) <= distractors:
        return []
    rng = np.random.default_rng(seed)
    rank_of = {w: r for r, w in enumerate(band)}
    in_band = set(band)
    sentences = [s for doc in val_docs for s in SENTENCE_END.split(doc) if 8 <= len(s.split()) <= 40]
    items = []
    for index in rng.permutation(len(sentences)):
        words = sentences[index].split()
        slots = [i for i, w in enumerate(words) if w.lower() in in_band and w == w.lower()]
        if not slots:
            continue
        i = slots[rng.integers(len(slots))]
        rank = rank_of[
            words[i].lower()
        ]  # distractors of about the answer's frequency: word frequency alone can't pick it
        near = np.arange(max(0, rank - 25), min(len(band), rank + 26))
        others = [band[j] for j in rng.permutation(near) if band[j] != words[i].lower()]
        items.append(
            ClozeItem(" ".join(words[:i]), words[i], " ".join(words[i + 1 :]), (words[i], *others[:distractors]))
        )
        if len(items) == n:
            break
    return items


def cloze_accuracy(scorer, kind: str, items: list[ClozeItem]) -> dict:
    """{"cloze_accuracy", "cloze_items", "cloze_chance"}: the answer must score highest of its candidates
    (a tie with a distractor counts as wrong)."""
    correct = 0
    for item in items:
        scores = scorer.slot_scores(kind, item.left, list(item.candidates), item.right)
        correct += int(scores[0] > scores[1:].max())
    return {
        "cloze_accuracy": correct / max(len(items), 1),
        "cloze_items": len(items),
        "cloze_chance": 1 / len(items[0].candidates) if items else 0.0,
    }
