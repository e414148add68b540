"""Multi-word masking units: named entities, gazetteer phrases and high-PMI n-grams, as token sidecars.

Words are the tokenizer's words (the word-start sidecar), identified by a 64-bit hash of their token ids,
so matching works for any tokenizer and script and never needs the text. The sidecar holds one uint8
per token: 1 = first token of a phrase unit, 2 = inside one, 0 = not in a phrase. Phrases always cover
whole words and never cross a document boundary.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from masklab.config import EntitySettings, PmiSettings
from masklab.data.shards import Shards, Sidecar, unpadded_backend, word_starts
from masklab.data.tagging import (
    build_tagger,
    covering_span,
    tagged_stream,
    tagger_key,
    token_char_positions,
    word_first_token,
)
from masklab.errors import UserError
from masklab.fsutil import write_text_atomic

CHUNK_TOKENS = 1 << 22  # tokens matched at once: bounds memory whatever the corpus size
PMI_VERSION = 1  # bump when the PMI recipe changes, so cached vocabularies are rebuilt

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xD6E8FEB86659FD93)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele et al. 2014): a well-spread 64-bit hash of a 64-bit value."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def word_hashes(tokens: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash of each word (W,), index of each word's first token (W,)) for a token run starting on a word."""
    first = np.flatnonzero(starts)
    within = np.arange(len(tokens)) - np.repeat(first, np.diff(np.append(first, len(tokens))))
    parts = splitmix64(tokens.astype(np.uint64) * _K1 + within.astype(np.uint64) + np.uint64(1))
    return splitmix64(np.add.reduceat(parts, first)), first


def ngram_hashes(words: np.ndarray, n: int) -> np.ndarray:
    """(W - n + 1,) hash of the n words starting at each position."""
    h = words[: len(words) - n + 1].copy()
    for j in range(1, n):
        h = splitmix64(h * _K2 + words[j : len(words) - n + 1 + j])
    return h


def _windows_ok(valid: np.ndarray, n: int) -> np.ndarray:
    """(W - n + 1,) True where all n words from a position are valid."""
    bad = np.concatenate([[0], np.cumsum(~valid)])
    return bad[n:] - bad[: len(valid) - n + 1] == 0


def _chunks(tokens: np.ndarray, sep_id: int):
    """(start, end) token ranges of about CHUNK_TOKENS, each ending just after a [SEP]."""
    a, n = 0, len(tokens)
    while a < n:
        b = min(n, a + CHUNK_TOKENS)
        if b < n:
            seps = np.flatnonzero(np.asarray(tokens[a:b]) == sep_id)
            b = a + int(seps[-1]) + 1 if len(seps) else b
        yield a, b
        a = b


def _mark(out: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
    """Write phrase units [starts, ends) (token positions within `out`) as 1 (first token) / 2 (rest)."""
    if not len(starts):
        return
    inside = np.zeros(len(out) + 1, dtype=np.int64)
    np.add.at(inside, starts + 1, 1)
    np.add.at(inside, ends, -1)
    out[np.cumsum(inside[:-1]) > 0] = 2
    out[starts] = 1


def match_ngrams(
    word_hash: np.ndarray, valid: np.ndarray, vocab: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy left-to-right, longest-first matches of vocabulary n-grams: (first word, n) arrays."""
    found = []
    for n, table in vocab.items():
        if n > len(word_hash) or not len(table):
            continue
        h = ngram_hashes(word_hash, n)
        where = np.flatnonzero(_windows_ok(valid, n) & np.isin(h, table))
        found.append(np.stack([where, np.full(len(where), n)], axis=1))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cands = np.concatenate(found)
    cands = cands[np.lexsort((-cands[:, 1], cands[:, 0]))]  # by position, longest first
    firsts, lengths, free = [], [], 0
    for i, n in cands.tolist():
        if i >= free:
            firsts.append(i)
            lengths.append(n)
            free = i + n
    return np.asarray(firsts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)


def mark_matches(out, tokens, starts, sep_id, vocab, word_ok=None) -> None:
    """Match `vocab` over a token stream chunk by chunk and mark the matches in `out` where it is still 0."""
    for a, b in _chunks(tokens, sep_id):
        toks = np.asarray(tokens[a:b])
        hashes, first = word_hashes(toks, np.asarray(starts[a:b]).astype(bool) | (np.arange(b - a) == 0))
        valid = toks[first] != sep_id
        if word_ok is not None:
            valid &= word_ok[toks[first]]
        valid &= np.asarray(out[a:b])[first] == 0  # words already in a unit stay as they are
        at, n = match_ngrams(hashes, valid, vocab)
        bounds = np.append(first, b - a)
        chunk = np.asarray(out[a:b]).copy()
        _mark(chunk, bounds[at], bounds[at + n])
        out[a:b] = chunk


# ----------------------------------------------------------------------------------------------- entities


def gazetteer_vocab(path: str, tokenizer) -> dict[int, np.ndarray]:
    """Gazetteer phrases (one per line) as n-gram hashes of their tokenizer words, by word count n."""
    file = Path(path).expanduser()
    phrases = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not phrases:
        raise UserError(f"masking.entity.gazetteer {file} has no phrases; put one phrase per line")
    by_n: dict[int, list] = {}
    for enc in unpadded_backend(tokenizer).encode_batch(phrases, add_special_tokens=False):
        ids = np.asarray(enc.ids, dtype=np.int64)
        if not len(ids):
            continue
        hashes, _ = word_hashes(ids, word_starts(enc.word_ids).astype(bool))
        by_n.setdefault(len(hashes), []).append(ngram_hashes(hashes, len(hashes))[0])
    return {n: np.unique(np.asarray(h, dtype=np.uint64)) for n, h in sorted(by_n.items(), reverse=True)}


def _entity_spans(text: str, enc, entities: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ranges [start, end) of a document's entities, widened to whole tokenizer words."""

    if not entities or not len(enc.ids):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ents = np.asarray(sorted(entities), dtype=np.int64)
    which = covering_span(token_char_positions(text, enc), ents[:, 0], ents[:, 1])  # (N,) entity of each token or -1
    first_of_word = word_first_token(enc.word_ids)
    is_last = np.append(first_of_word[1:] != first_of_word[:-1], True)  # the token ends its word
    last_of_word = np.minimum.accumulate(np.where(is_last, np.arange(len(is_last)), len(is_last))[::-1])[::-1]
    starts, ends = [], []
    for e in np.unique(which[which >= 0]).tolist():
        tokens = np.flatnonzero(which == e)
        start, end = int(first_of_word[tokens[0]]), int(last_of_word[tokens[-1]]) + 1
        if not ends or start >= ends[-1]:  # entities that widen into the previous one are dropped
            starts.append(start)
            ends.append(end)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def entity_marks(text: str, enc, entities: list[tuple[int, int]]) -> np.ndarray:
    """(N,) uint8 phrase marks of one document's tokens: 1 at an entity's first token, 2 inside it."""
    a, b = _entity_spans(text, enc, entities)
    doc = np.zeros(len(enc.ids), dtype=np.uint8)
    _mark(doc, a, b)
    return doc


def entity_sidecar(settings: EntitySettings) -> Sidecar:
    """Phrase units from named entities (a tagger's recogniser) and a gazetteer, entities first."""

    parts = [f"ner={tagger_key(settings.ner)}" if settings.ner else "ner=none"]
    if settings.gazetteer:
        file = Path(settings.gazetteer).expanduser()
        if not file.is_file():
            raise UserError(
                f"masking.entity.gazetteer {file} does not exist; give a text file with one phrase per line"
            )
        parts.append("gaz=" + hashlib.sha256(file.read_bytes()).hexdigest())
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def build_entities(shards: Shards, split: str, tokenizer, out: np.ndarray, show_progress: bool) -> None:

        out[:] = 0
        if settings.ner:
            tagger = build_tagger(settings.ner, pos=False, entities=True, processes=settings.processes)
            for position, text, enc, tags in tagged_stream(
                shards, split, tokenizer, tagger, f"finding entities in {split} ({settings.ner})", show_progress
            ):
                out[position : position + len(enc.ids)] = entity_marks(text, enc, tags.entities)
        if settings.gazetteer:
            vocab = gazetteer_vocab(settings.gazetteer, tokenizer)
            mark_matches(out, shards.tokens(split), shards.sidecar(split, "words"), tokenizer.sep_token_id, vocab)

    return Sidecar("phrases", f"entity-{key}", 0, build_entities)


# ---------------------------------------------------------------------------------------------------- PMI


def _segmentations(n: int) -> list[list[tuple[int, int]]]:
    """Every split of n consecutive words into >= 2 contiguous segments, as (offset, length) lists."""
    out = []
    for cuts in range(1, 1 << (n - 1)):
        bounds = [0] + [i + 1 for i in range(n - 1) if cuts >> i & 1] + [n]
        out.append([(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])])
    return out


def pmi_vocabulary(
    tokens: np.ndarray, starts: np.ndarray, sep_id: int, word_ok: np.ndarray, settings: PmiSettings
) -> list[dict]:
    """The highest-PMI word n-grams (n = 2..max_n) of a token stream.

    PMI_n (Levine et al. 2021, arXiv 2010.01825, eq. 3) of an n-gram is the smallest log-ratio between
    its probability and the product of the probabilities of the parts of any split into contiguous
    segments: an n-gram scores high only if no split explains it, so "the united states" does not ride
    on "united states". Probabilities are counts over the number of n-gram positions. N-grams seen fewer
    than `min_count` times are skipped; the best vocab_size / (max_n - 1) of each length are kept.
    Returns [{"n", "hash", "count", "pmi", "first_word"}] sorted by PMI (first_word: where one occurrence starts).
    """
    hashes, first = word_hashes(tokens, starts)
    valid = (tokens[first] != sep_id) & word_ok[tokens[first]]
    tables, grams = {}, {}
    for n in range(1, settings.max_n + 1):
        grams[n] = ngram_hashes(hashes, n) if n <= len(hashes) else np.zeros(0, dtype=np.uint64)
        ok = _windows_ok(valid, n) if n <= len(hashes) else np.zeros(0, dtype=bool)
        uniq, index, count = np.unique(grams[n][ok], return_index=True, return_counts=True)
        tables[n] = (uniq, count, np.flatnonzero(ok)[index], max(int(ok.sum()), 1))
    quota = max(1, settings.vocab_size // (settings.max_n - 1))
    kept = []
    for n in range(2, settings.max_n + 1):
        uniq, count, at, total = tables[n]
        frequent = count >= settings.min_count
        if not frequent.any():
            continue
        uniq, count, at = uniq[frequent], count[frequent], at[frequent]
        log_joint = np.log(count / total)
        score = np.full(len(uniq), np.inf)
        for parts in _segmentations(n):
            log_parts = np.zeros(len(uniq))
            for offset, length in parts:
                sub_uniq, sub_count, _, sub_total = tables[length]
                sub = np.searchsorted(sub_uniq, grams[length][at + offset])
                log_parts += np.log(sub_count[sub] / sub_total)
            score = np.minimum(score, log_joint - log_parts)
        best = np.argsort(-score, kind="stable")[:quota]
        best = best[score[best] > 0]
        kept += [
            {"n": n, "hash": int(uniq[i]), "count": int(count[i]), "pmi": float(score[i]), "first_word": int(at[i])}
            for i in best
        ]
    return sorted(kept, key=lambda g: -g["pmi"])


def word_characters(tokenizer) -> np.ndarray:
    """(V,) True for tokens holding a letter or digit: n-grams of punctuation are not collocations."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return np.array([any(c.isalnum() for c in piece) for piece in pieces], dtype=bool)


def pmi_sidecar(settings: PmiSettings) -> Sidecar:
    """Phrase units from the corpus' high-PMI n-grams. The vocabulary is learned from the training split
    once and kept beside the shards as pmi-KEY.json (readable: text, count, PMI of every unit)."""

    def build_pmi(shards: Shards, split: str, tokenizer, out: np.ndarray, show_progress: bool) -> None:
        out[:] = 0
        mark_matches(
            out,
            shards.tokens(split),
            shards.sidecar(split, "words"),
            tokenizer.sep_token_id,
            pmi_table(shards, tokenizer, settings),
            word_characters(tokenizer),
        )

    return Sidecar("phrases", f"pmi-{pmi_key(settings)}", 0, build_pmi)


def pmi_key(settings: PmiSettings) -> str:
    return hashlib.sha256(
        json.dumps(
            [PMI_VERSION, settings.max_n, settings.min_count, settings.vocab_size, settings.count_tokens]
        ).encode()
    ).hexdigest()[:16]


def pmi_table(shards: Shards, tokenizer, settings: PmiSettings) -> dict[int, np.ndarray]:
    """{n: sorted n-gram hashes} of the corpus' high-PMI units, learned from the training split on first use
    and kept beside the shards as pmi-KEY.json (readable: text, count, PMI of every unit)."""
    path = shards.directory / f"pmi-{pmi_key(settings)}.json"
    if not path.exists():
        word_ok, sep = word_characters(tokenizer), tokenizer.sep_token_id
        tokens, starts = shards.tokens("train"), shards.sidecar("train", "words")
        end = min(len(tokens), settings.count_tokens)
        if end < len(tokens):
            seps = np.flatnonzero(np.asarray(tokens[:end]) == sep)
            end = int(seps[-1]) + 1 if len(seps) else end
        head = np.asarray(tokens[:end]).astype(np.int64)
        vocab = pmi_vocabulary(head, np.asarray(starts[:end]).astype(bool), sep, word_ok, settings)
        if not vocab:
            raise UserError(
                f"no word n-gram occurs masking.pmi.min_count={settings.min_count} times with positive PMI; "
                "use a larger corpus or a lower masking.pmi.min_count"
            )
        bounds = np.append(np.flatnonzero(np.asarray(starts[:end])), end)
        for gram in vocab:
            a = gram["first_word"]
            gram["text"] = tokenizer.decode(head[bounds[a] : bounds[a + gram["n"]]].tolist())
        write_text_atomic(
            path, json.dumps(vocab, ensure_ascii=False, indent=0)
        )  # a playground may learn it beside a run
    grams = json.loads(path.read_text(encoding="utf-8"))
    return {
        n: np.unique(np.array([g["hash"] for g in grams if g["n"] == n], dtype=np.uint64))
        for n in sorted({g["n"] for g in grams}, reverse=True)
    }
