"""Typed text as a masking strategy hides it: one masking shown piece by piece, statistics over many.

The text becomes one block `[CLS] text [SEP]` with the per-token features the strategy reads, made the
way the training pipeline makes them for a corpus: word starts from the tokenizer, part-of-speech tags
and entities from the run's tagger, gazetteer phrases, and the corpus' own high-PMI n-grams (learned from
the run's training split, as training does). The block is then masked `passes` times (the epochs of
dynamic masking), and the statistics are measured over all of them, so a short text still gives a
rate and split close to what training sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from masklab.config import MaskingConfig
from masklab.data.phrases import entity_marks, gazetteer_vocab, mark_matches, pmi_key, pmi_table, word_characters
from masklab.data.pipeline import prepare_data
from masklab.data.shards import word_starts
from masklab.data.tagging import build_tagger, tag_documents, token_pos
from masklab.errors import UserError
from masklab.masking import MLMBatcher
from masklab.masking.preview import Piece, render_pieces
from masklab.masking.stats import masking_statistics
from masklab.registry import names

TAGGER_SCRIPTS = {
    "spacy-en": ("English", "Latin"),
    "parsivar-fa": ("Persian", "Arabic"),
}  # tagger -> (language, script)
PASSES = 64  # maskings measured per preview: the rate's spread over 64 draws is small even for one sentence


@dataclass
class TextPreview:
    pieces: list[Piece]  # the text as the model sees it in one masking (special tokens included)
    stats: dict  # measured over every pass
    targets: dict  # what the config asks for
    notice: str


def script_of(text: str) -> str:
    """ "Latin", "Arabic" or "other": the script most of a text's letters are written in."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "other"
    arabic = sum("\u0600" <= c <= "\u06ff" or "\ufb50" <= c <= "\ufeff" for c in letters)
    latin = sum(c.isascii() or "\u00c0" <= c <= "\u024f" for c in letters)
    best = max((arabic, "Arabic"), (latin, "Latin"), (len(letters) - arabic - latin, "other"))
    return best[1]


@lru_cache(maxsize=4)
def _tagger(name: str, pos: bool, entities: bool):

    return build_tagger(name, pos=pos, entities=entities)


def _tags(name: str, text: str, strategy: str, pos: bool = True, entities: bool = False):

    language, script = TAGGER_SCRIPTS.get(name, ("", ""))
    if script and script_of(text) not in (script, "other"):
        others = ", ".join(f"{n} for {lang}" for n, (lang, _) in TAGGER_SCRIPTS.items() if n != name)
        raise UserError(
            f"strategy {strategy} needs tags of this text's language, and the tagger {name} tags {language} only; "
            f"choose another tagger ({others}) or a strategy without tags (random, whole_word, span)"
        )
    return tag_documents(_tagger(name, pos, entities), [text])[0]


def _pmi(run, masking, tokenizer):
    """(n-gram table, word-character table) of the run's corpus, prepared once per run and settings: reading
    the corpus back costs seconds, a preview should not."""

    key = ("pmi", pmi_key(masking.pmi))
    if key in run.tables:
        return run.tables[key]
    if run.config is None:
        raise UserError(
            f"strategy pmi learns its n-grams from the training corpus, and {run.run} names none (no config.yaml); "
            "preview a pretraining run's directory, or choose another strategy"
        )
    data = prepare_data(run.config.data, run.config.tokenizer, show_progress=False)
    if len(data.tokenizer) != len(tokenizer):
        raise UserError(
            f"the corpus of {run.run} is tokenised with another vocabulary than its checkpoint; "
            "strategy pmi cannot be previewed for this run"
        )
    run.tables[key] = pmi_table(data.shards, tokenizer, masking.pmi), word_characters(tokenizer)
    return run.tables[key]


def features(run, masking, text: str, max_tokens: int) -> tuple[np.ndarray, dict, str]:
    """(ids (T,), {feature: (T,) uint8}, notice) of the block `[CLS] text [SEP]` for `masking.strategy`."""

    tokenizer = run.tokenizer
    enc = run.backend.encode(text, add_special_tokens=False)
    notice = ""
    if len(enc.ids) > max_tokens - 2:
        notice = f"the text is {len(enc.ids):,} tokens long; the preview shows the first {max_tokens - 2:,}"
        enc.truncate(max_tokens - 2)
        text = text[: enc.offsets[-1][1]] if enc.offsets else ""
    if not enc.ids:
        raise UserError("the text is empty: type a sentence to see how it is masked")
    body = len(enc.ids)

    def block(values, cls_value=1, sep_value=1):
        return np.concatenate([[cls_value], np.asarray(values), [sep_value]]).astype(np.uint8)

    ids = np.array([tokenizer.cls_token_id, *enc.ids, tokenizer.sep_token_id], dtype=np.int64)
    out = {"words": block(word_starts(enc.word_ids))}
    strategy = masking.strategy
    if strategy == "pos":
        out["pos"] = block(token_pos(text, enc, _tags(masking.pos.tagger, text, strategy)), 0, 0)
    if strategy in ("entity", "pmi"):
        phrases = np.zeros(body + 2, dtype=np.uint8)
        if strategy == "entity":
            settings = masking.entity
            if settings.ner:
                phrases[1:-1] = entity_marks(
                    text, enc, _tags(settings.ner, text, strategy, pos=False, entities=True).entities
                )
            if settings.gazetteer:
                mark_matches(
                    phrases, ids, out["words"], tokenizer.sep_token_id, gazetteer_vocab(settings.gazetteer, tokenizer)
                )
        else:
            mark_matches(phrases, ids, out["words"], tokenizer.sep_token_id, *_pmi(run, masking, tokenizer))
        out["phrases"] = phrases
    return ids, out, notice


def masking_for(run, strategy: str, rate: float, tagger: str = ""):
    """The run's masking settings (defaults for a bare checkpoint) with the strategy, rate and tagger chosen."""

    if strategy not in names("masker"):
        raise UserError(f"unknown masking strategy {strategy!r}; choose one of: {', '.join(names('masker'))}")
    base = run.config.masking if run.config is not None else MaskingConfig()
    changes = {"strategy": strategy, "rate": float(rate)}
    if strategy == "entity" and base.selection == "bernoulli":
        changes["selection"] = "exact"
    masking = dataclasses.replace(base, **changes)
    if tagger:
        masking.pos = dataclasses.replace(masking.pos, tagger=tagger)
        if masking.entity.ner:
            masking.entity = dataclasses.replace(masking.entity, ner=tagger)
    return masking


def preview_text(
    run, text: str, strategy: str = "random", rate: float = 0.15, seed: int = 0, tagger: str = "", passes: int = PASSES
) -> TextPreview:

    masking = masking_for(run, strategy, rate, tagger)
    ids, feats, notice = features(run, masking, text, run.max_tokens)
    batcher = MLMBatcher(masking, run.tokenizer, seed=int(seed))
    tiled = {name: np.tile(values, (passes, 1)) for name, values in feats.items()}
    batch = batcher.mask(
        np.tile(ids, (passes, 1)),
        np.zeros(passes, dtype=np.int64),
        np.arange(passes),
        tiled,
        rate=masking.rate,
        with_units=True,
    )
    stats = masking_statistics([batch], run.tokenizer.mask_token_id)
    stats["passes"] = passes
    targets = {
        "rate": masking.rate,
        "mask_share": masking.mask_token_fraction,
        "random_share": masking.random_token_fraction,
        "kept_share": 1.0 - masking.mask_token_fraction - masking.random_token_fraction,
    }
    return TextPreview(render_pieces(run.tokenizer, batch, 0), stats, targets, notice)
