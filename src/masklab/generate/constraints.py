"""Constraints that hold exactly in every sample: banned words, an allowed vocabulary, word starts.

Token-level rules are applied inside every step as log-probability masks: special tokens are never
drawn, single-token banned words are never drawn, with an allowed vocabulary only the pieces of allowed
words can be drawn, and a gap that starts a word never starts with a continuation piece. A word can
also be spelled by several pieces, so after generation every sample is split into words (a word start
and its continuation pieces) and checked; offending words are masked again and redrawn with that
spelling forbidden at its place, until none is left (`repair`). Required words at fixed places are
given text (template.py), so they cannot change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from masklab.errors import UserError


def continuation_pieces(tokenizer) -> torch.Tensor:
    """(V,) bool: tokens that continue a word rather than start one (WordPiece "##x"; byte-level BPE and
    SentencePiece pieces without their word-start marker)."""
    model = type(tokenizer.backend_tokenizer.model).__name__ if hasattr(tokenizer, "backend_tokenizer") else ""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    out = torch.zeros(len(pieces), dtype=torch.bool)
    for i, piece in enumerate(pieces):
        if i in special or piece is None:
            continue
        if model == "WordPiece":
            out[i] = piece.startswith("##")
        elif model == "BPE":
            out[i] = not piece.startswith("Ġ")
        elif model == "Unigram":
            out[i] = not piece.startswith("▁")
    return out


def normalise(tokenizer, word: str) -> str:
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    return (normalizer.normalize_str(word) if normalizer else word).strip()


@dataclass
class Constraints:
    banned: list[str] = field(default_factory=list)  # words that may not appear in generated text
    allowed: list[str] | None = None  # the only words generated text may use (None = any)


class Rules:
    """A tokenizer's view of `Constraints`: the per-step masks and the word-level check."""

    def __init__(self, constraints: Constraints, tokenizer):
        self.tokenizer = tokenizer
        V = len(tokenizer)
        self.continuation = continuation_pieces(tokenizer)
        self.forbidden = torch.zeros(V, dtype=torch.bool)
        self.forbidden[sorted(set(tokenizer.all_special_ids))] = True
        self.banned = {normalise(tokenizer, w) for w in constraints.banned if w.strip()}
        self.allowed = None
        for word in self.banned:
            pieces = self.spell(word)
            if len(pieces) == 1:
                self.forbidden[pieces[0]] = True
        if constraints.allowed is not None:
            self.allowed = {normalise(tokenizer, w) for w in constraints.allowed if w.strip()}
            if not self.allowed:
                raise UserError("the allowed vocabulary is empty; list the words the model may use")
            usable = torch.zeros(V, dtype=torch.bool)
            for word in self.allowed:
                usable[self.spell(word)] = True
            self.forbidden |= ~usable
        if bool(self.forbidden.all()):
            raise UserError("the constraints forbid every token; allow more words or ban fewer")

    def spell(self, word: str) -> list[int]:
        tokens = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if self.tokenizer.unk_token_id in tokens:
            raise UserError(
                f"{word!r} is outside the model's vocabulary (it would be read as [UNK]); "
                "constraints can only name words the tokenizer can spell"
            )
        return tokens

    def check_given(self, literals: list[str], required: list[str]) -> None:
        """Given text may not hold a banned word; a required word must be spelled without [UNK] and allowed."""
        for word in required:
            self.spell(word)
            if self.allowed is not None and normalise(self.tokenizer, word) not in self.allowed:
                raise UserError(f"required word {word!r} is not in the allowed vocabulary; add it there or drop it")
        for literal in [*literals, *required]:
            for w in literal.split():
                w = normalise(self.tokenizer, w)
                if w in self.banned:
                    raise UserError(f"{w!r} is both required (given text) and banned; drop it from one of them")

    def processor(self, word_start: torch.Tensor):
        """The per-step mask: forbidden tokens everywhere, continuation pieces where a word must start.
        `word_start` (B, T) bool, read at the asked positions."""
        forbidden_bias = (
            torch.zeros(len(self.forbidden)).masked_fill_(self.forbidden, float("-inf")).to(word_start.device)
        )
        starts_padded = torch.cat([word_start, torch.zeros_like(word_start[:, :1])], dim=1)
        continuation = self.continuation.to(word_start.device)

        def process(logp: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
            logp += forbidden_bias
            at_start = starts_padded[rows, positions]  # (K,)
            return logp.masked_fill_(at_start.unsqueeze(-1) & continuation, float("-inf"))

        return process

    def violations(self, ids: list[int], editable: list[bool]) -> list[list[int]]:
        """Token positions of each generated word that breaks a word rule (a banned word, a word outside
        the allowed vocabulary); only words with at least one editable token count."""
        special = set(self.tokenizer.all_special_ids)
        bad, word = [], []

        def close():
            if word and any(editable[p] for p in word):
                text = normalise(self.tokenizer, self.tokenizer.decode([ids[p] for p in word]).replace(" ", ""))
                if text in self.banned or (self.allowed is not None and text not in self.allowed):
                    bad.append([p for p in word if editable[p]])

        for p, token in enumerate(ids):
            if token in special:
                close()
                word = []
            elif self.continuation[token] and word:
                word.append(p)
            else:
                close()
                word = [p]
        close()
        return bad

    @property
    def word_rules(self) -> bool:
        return bool(self.banned) or self.allowed is not None
