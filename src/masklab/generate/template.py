"""Templates: text with gaps to fill, and the rows the engine fills.

    "The [MASK] of the union is [MASK]*3 ."   one token, then exactly three
    "[MASK]*2-6 freedom [MASK]*4"             a gap of 2 to 6 tokens, drawn per sample
    a prompt P with length L                  P followed by a gap of L tokens (continuation)
    length L alone                            one gap of L tokens (unconditional)

The given text is never re-typed from tokens: a sample's text is the template's own text with each gap
replaced by its decoded tokens, so everything outside the gaps stays byte for byte. A gap that follows
whitespace (or opens the text) must start a new word, so a sub-word continuation piece ("##ing") is
never drawn there.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from masklab.errors import UserError

GAP = re.compile(r"\[MASK\](?:\*(\d+)(?:-(\d+))?)?")


@dataclass(frozen=True)
class Gap:
    low: int
    high: int


def parse_template(text: str, mask_token: str = "[MASK]") -> list[str | Gap]:
    """Literal strings and gaps, in order."""
    if mask_token != "[MASK]":
        text = text.replace(mask_token, "[MASK]")
    parts: list[str | Gap] = []
    end = 0
    for match in GAP.finditer(text):
        if match.start() > end:
            parts.append(text[end : match.start()])
        low = int(match.group(1) or 1)
        high = int(match.group(2) or low)
        if low < 1 or high < low:
            raise UserError(
                f"{match.group(0)} is not a gap length: write [MASK]*N (N >= 1) or [MASK]*A-B with 1 <= A <= B"
            )
        parts.append(Gap(low, high))
        end = match.end()
    if end < len(text):
        parts.append(text[end:])
    if not any(isinstance(p, Gap) for p in parts):
        raise UserError(
            f"the text {text[:60]!r} has no [MASK] to fill; write [MASK] (one token), [MASK]*3 or [MASK]*2-6 "
            "where the model should write, or use --prompt to continue a text"
        )
    return parts


def continuation_template(prompt: str, length: int, required: dict[int, str] | None = None, tokenizer=None) -> str:
    """The template of a continuation (or, with an empty prompt, of an unconditional sample) of `length`
    tokens; `required` {position: word} puts words at fixed token positions (0-based) of the generated part."""
    if length < 1:
        raise UserError(f"--length must be >= 1 (got {length})")
    pieces, at = [], 0
    for position, word in sorted((required or {}).items()):
        if position < at:
            raise UserError(
                f"required word {word!r} at position {position} overlaps the word before it; space them out"
            )
        if position > at:
            pieces.append(f"[MASK]*{position - at}")
        pieces.append(word)
        at = position + (
            len(tokenizer(word, add_special_tokens=False)["input_ids"]) if tokenizer else len(word.split())
        )
        if at > length:
            raise UserError(
                f"--length {length} is shorter than the required words: {word!r} at position {position} "
                f"ends at token {at}; give --length {at} or more"
            )
    if at < length:
        pieces.append(f"[MASK]*{length - at}")
    return " ".join(p for p in ([prompt.rstrip()] if prompt.strip() else []) + pieces)


@dataclass
class Row:
    """One sample's row: token ids, which are editable, where a word must start, and how to render it."""

    ids: list[int]
    editable: list[bool]
    word_start: list[bool]  # editable positions where a continuation piece may not be drawn
    pieces: list[tuple[str, int, int]]  # ("text", -1, -1) literal, or ("", start, end) a gap's token range
    literals: list[str]


def layout(parts: list[str | Gap], tokenizer, rng: random.Random) -> Row:
    """The row of one sample: [CLS] literal tokens / gap masks ... [SEP]; gap lengths drawn from `rng`."""
    ids, editable, word_start, pieces = [tokenizer.cls_token_id], [False], [False], []
    for i, part in enumerate(parts):
        if isinstance(part, Gap):
            n = rng.randint(part.low, part.high)
            before = parts[i - 1] if i else ""
            must_start = not isinstance(before, str) or before == "" or before[-1:].isspace() or i == 0
            pieces.append(("", len(ids), len(ids) + n))
            ids += [tokenizer.mask_token_id] * n
            editable += [True] * n
            word_start += [must_start] + [False] * (n - 1)
        else:
            tokens = tokenizer(part, add_special_tokens=False)["input_ids"]
            pieces.append((part, -1, -1))
            ids += tokens
            editable += [False] * len(tokens)
            word_start += [False] * len(tokens)
    ids.append(tokenizer.sep_token_id)
    editable.append(False)
    word_start.append(False)
    return Row(ids, editable, word_start, pieces, [p for p in parts if isinstance(p, str)])


def decode_gap(tokenizer, tokens: list[int], keep_masks: bool = False) -> str:
    text = tokenizer.decode(tokens, skip_special_tokens=not keep_masks).strip()
    return text[2:] if text.startswith("##") else text  # a gap inside a word: its first piece joins the text before it


def render(row: Row, ids: list[int], tokenizer, keep_masks: bool = False) -> tuple[str, list[str]]:
    """(the sample's text, each gap's text): the given text as it was written, gaps decoded (with
    `keep_masks`, tokens still masked show as the mask token: a step of a trajectory)."""
    out, gaps = [], []
    for text, start, end in row.pieces:
        if start < 0:
            out.append(text)
        else:
            gaps.append(decode_gap(tokenizer, ids[start:end], keep_masks))
            out.append(gaps[-1])
    return "".join(out), gaps


def given_text_intact(row: Row, text: str, gaps: list[str]) -> bool:
    """The exactness check: the sample, with its gaps cut out at their places, is the given text byte for byte."""
    at, g = 0, 0
    for literal, start, _ in row.pieces:
        if start < 0:
            if text[at : at + len(literal)] != literal:
                return False
            at += len(literal)
        else:
            at += len(gaps[g])
            g += 1
    return at == len(text)
