"""Learning a vocabulary the same way in every process: word counts, BPE merges, Unigram pieces.

The `tokenizers` trainers keep words and pairs in hash maps seeded at random per process, and break
ties in frequency by ids handed out in that hash order (WordPiece's `##x` pieces), or sum floats in
that order (Unigram's EM): the same text gave two vocabularies that shared only part of their
pieces. Here every step has a fixed order:

- words are counted with the tokenizer's own normalizer and pre-tokenizer, so training sees exactly
  the words encoding will see;
- BPE and WordPiece merge the most frequent adjacent pair; **among pairs of equal count the one whose
  left piece, then right piece, sorts first by Unicode code point wins**; new pieces take the next id;
- Unigram is SentencePiece's trainer (the reference implementation, Kudo 2018, arXiv 1804.10959) on
  the sorted word counts with one thread, so its float sums always run in the same order.

Counts are integers, so nothing depends on thread count, hash seed or the machine.
"""

from __future__ import annotations

import heapq
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

Pair = tuple[str, str]


def count_words(lines: Iterable[str], normalizer, pre_tokenizer) -> Counter:
    """Pre-tokenised words and their counts (the input every trainer below shares)."""
    counts: Counter = Counter()
    for line in lines:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)))
    counts.pop("", None)
    return counts


def _split(word: str, prefix: str | None) -> list[str]:
    """A word as its initial symbols: characters, continuation ones carrying WordPiece's prefix."""
    if prefix is None:
        return list(word)
    return [word[0]] + [prefix + c for c in word[1:]]


def _pairs(symbols: list[str]) -> Iterable[Pair]:
    return zip(symbols, symbols[1:])


def _merge_word(symbols: list[str], pair: Pair, merged: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_merges(
    counts: Counter,
    vocab_size: int,
    specials: list[str],
    min_frequency: int = 2,
    prefix: str | None = None,
    alphabet: Iterable[str] = (),
) -> tuple[list[str], list[Pair]]:
    """Byte-pair merges (Sennrich et al. 2016, arXiv 1508.07909) with a fixed tie-break.

    Returns the vocabulary in id order (specials, every character sorted, WordPiece continuation
    characters sorted, then one piece per merge) and the merges in order. `prefix` is WordPiece's
    continuation mark ("##"): pieces inside a word carry it, as `tokenizers`' WordPiece trainer does.
    """
    words = sorted(counts)  # a fixed order for word indices
    freq = [counts[w] for w in words]
    symbols = [_split(w, prefix) for w in words]
    vocab: list[str] = list(specials)
    known = set(vocab)
    # every character stands alone too (a word may start with one only ever seen inside words), as in `tokenizers`
    initial = sorted(set(alphabet) | {c for w in words for c in w})
    continuing = sorted({s for syms in symbols for s in syms[1:]}) if prefix is not None else []
    for piece in initial + continuing:
        if piece not in known:
            vocab.append(piece)
            known.add(piece)

    pair_count: Counter = Counter()
    where: dict[Pair, set[int]] = {}
    for i, syms in enumerate(symbols):
        for pair in _pairs(syms):
            pair_count[pair] += freq[i]
            where.setdefault(pair, set()).add(i)
    # max-heap on count; equal counts pop the pair that sorts first (the stated tie-break)
    heap = [(-c, a, b) for (a, b), c in pair_count.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    while len(vocab) < vocab_size and heap:
        neg, a, b = heapq.heappop(heap)
        if pair_count.get((a, b), 0) != -neg:
            continue  # stale entry: the pair's count changed after it was pushed
        if -neg < max(min_frequency, 1):
            break
        pair = (a, b)
        merged = a + (b[len(prefix) :] if prefix and b.startswith(prefix) else b)
        merges.append(pair)
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
        changed: set[Pair] = set()
        for i in sorted(where.pop(pair, ())):
            old = symbols[i]
            new = _merge_word(old, pair, merged)
            if len(new) == len(old):
                continue  # the pair left this word in an earlier merge
            for p in _pairs(old):
                pair_count[p] -= freq[i]
                changed.add(p)
            for p in _pairs(new):
                pair_count[p] += freq[i]
                where.setdefault(p, set()).add(i)
                changed.add(p)
            symbols[i] = new
        pair_count.pop(pair, None)
        for p in sorted(changed):
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p[0], p[1]))
            else:
                pair_count.pop(p, None)
    return vocab, merges


def learn_unigram(counts: Counter, vocab_size: int, max_piece_length: int = 16) -> list[tuple[str, float]]:
    """Unigram pieces and log-probabilities from SentencePiece, in its (deterministic) order.

    The words go in as SentencePiece's tab-separated "word<TAB>count" input, sorted, and the trainer
    runs on one thread: its EM sums floats, and another thread count would sum them in another order.
    Every character is kept (`character_coverage=1.0`): in Persian the rare ones are letters.
    """

    with tempfile.TemporaryDirectory(prefix="masklab-spm-") as tmp:
        tsv = Path(tmp) / "words.tsv"
        with tsv.open("w", encoding="utf-8") as f:
            for word in sorted(counts):
                if "\t" not in word and "\n" not in word:
                    f.write(f"{word}\t{counts[word]}\n")
        spm.SentencePieceTrainer.train(
            input=str(tsv),
            input_format="tsv",
            model_prefix=str(Path(tmp) / "m"),
            model_type="unigram",
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            character_coverage=1.0,
            num_threads=1,
            max_sentencepiece_length=max_piece_length,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            split_by_whitespace=True,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            byte_fallback=False,
            minloglevel=2,
        )
        sp = spm.SentencePieceProcessor(model_file=str(Path(tmp) / "m.model"))
        return [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size()) if not sp.is_unknown(i)]
