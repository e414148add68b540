"""Cheap per-document filters: mojibake repair, length, letter share and repetition.

Each dropper answers `flags(text) -> bool` (True = the document fails); the repairer answers `fix(text) -> str`.
Thresholds live in `FilterConfig` with their reasons; the measures here are Gopher's (Rae et al. 2021,
"Scaling Language Models: Methods, Analysis & Insights from Training Gopher", arXiv 2112.11446, Table A1).
"""

from __future__ import annotations

import re
import unicodedata

import ftfy
import numpy as np

from masklab.config import FilterConfig

# ftfy's encoding repairs only: its other fixes (curly quotes, ligatures, full-width forms, HTML entities) rewrite
# correct text, and normalisation is `data.normalization`'s job
_MOJIBAKE_ONLY = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

_NOT_LETTER = re.compile(r"[\d_]|[^\w\s]")  # digits, symbols, punctuation, and marks/format chars (told apart below)
# Gopher set its repetition thresholds on documents of 50+ words (it drops shorter ones); in a 30-word review one
# deliberate repeat ("vapid and devoid of substance ... vapid and devoid of substance") is already 20%
_NGRAM_MIN_WORDS = 50


class Mojibake:
    """Text decoded with the wrong codec, decoded again as it was meant ("Ã©" -> "é")."""

    def __init__(self, cfg: FilterConfig):
        pass

    def fix(self, text: str) -> str:
        # mojibake is made of non-ASCII characters: pure ASCII text skips ftfy's per-call cost (8x on short lines)
        return text if text.isascii() else ftfy.fix_text(text, _MOJIBAKE_ONLY)


class Length:
    """Too few words to give a masked word context, or words too long to be words (URLs, hashes, base64)."""

    def __init__(self, cfg: FilterConfig):
        self.min_words = cfg.min_words
        self.max_mean = cfg.max_mean_word_chars

    def flags(self, text: str) -> bool:
        words = text.split()
        return len(words) < self.min_words or (bool(words) and sum(map(len, words)) / len(words) > self.max_mean)


def letter_share(text: str) -> float:
    """Letters among letters, digits, symbols and punctuation; combining marks and format characters (Persian's
    zero-width non-joiner, Arabic vowel signs) belong to their letters and count as neither."""
    visible = sum(map(len, text.split()))  # counted in C: prose is mostly letters, so only the rest is listed
    rest = _NOT_LETTER.findall(text)
    marks = sum(1 for ch in rest if unicodedata.category(ch)[0] in "MC")
    letters = visible - len(rest)
    return letters / (visible - marks) if visible > marks else 0.0


class CharShare:
    """Mostly digits, symbols or punctuation: tables of figures, code, markup, separator lines."""

    def __init__(self, cfg: FilterConfig):
        self.min_share = cfg.min_letter_share

    def flags(self, text: str) -> bool:
        return letter_share(text) < self.min_share


def duplicate_line_share(text: str) -> float:
    """Share of the characters in lines that repeat an earlier line of the same document (Gopher)."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    seen: set[str] = set()
    repeated = 0
    for line in lines:
        if line in seen:
            repeated += len(line)
        seen.add(line)
    total = sum(map(len, lines))
    return repeated / total if total else 0.0


def duplicate_ngram_share(text: str, n: int = 5) -> float:
    """Share of the word characters covered by word n-grams that repeat an earlier n-gram of the document (Gopher's
    "fraction of characters in duplicate n-grams", counted as datatrove does: first occurrences are not
    duplicates); each word counts once however many repeats cover it."""
    words = text.split()
    if len(words) < _NGRAM_MIN_WORDS:
        return 0.0
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.uint64, count=len(words))
    count = len(words) - n + 1
    keys = ids[:count].copy()
    for k in range(1, n):  # a 64-bit polynomial hash of each n-gram (wraps silently): collisions ~ 2^-64
        keys = keys * np.uint64(1_000_003) + ids[k : k + count]
    repeat = np.ones(count, dtype=bool)
    repeat[np.unique(keys, return_index=True)[1]] = False  # first occurrences are not repeats
    edges = np.zeros(len(words) + 1, dtype=np.int64)  # +1 where a repeat starts covering words, -1 past its end
    starts = np.flatnonzero(repeat)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + n, -1)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    return float(lengths[np.cumsum(edges[:-1]) > 0].sum() / lengths.sum())


class Repetition:
    """Boilerplate and spam: repeated lines, or text made of repeated word 5-grams."""

    def __init__(self, cfg: FilterConfig):
        self.max_lines = cfg.max_dup_line_share
        self.max_ngrams = cfg.max_dup_ngram_share

    def flags(self, text: str) -> bool:
        return duplicate_line_share(text) > self.max_lines or duplicate_ngram_share(text) > self.max_ngrams
