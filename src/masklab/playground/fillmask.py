"""Fill-mask: the top-k fillers of every [MASK], in the model hub's fill-mask schema.

Each proposal is {"score", "token", "token_str", "sequence"}, exactly as a transformers fill-mask
pipeline returns it: one mask gives a list of proposals (the sequence decoded without special tokens),
several masks give one list per mask (each sequence fills only its own mask). Only the masked positions
go through the vocabulary projection, so a long sentence costs little more than a short one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from masklab.errors import UserError



@dataclass
class Filled:
    proposals: list[list[dict]]  # per [MASK], in order: the top-k proposals
    notice: str  # e.g. "the text was cut to 512 tokens"

    def hub(self) -> list:
        """The fill-mask pipeline's shape: a flat list for one mask, a list of lists for several."""
        return self.proposals[0] if len(self.proposals) == 1 else self.proposals


def encode_with_masks(tokenizer, text: str, max_tokens: int) -> tuple[list[int], str]:
    """Token ids ([CLS] ... [SEP]) of `text`, cut to `max_tokens` with a notice; a clear error without a [MASK]."""
    mask = tokenizer.mask_token
    if mask is None:
        raise UserError("this tokenizer has no mask token: fill-mask needs a masked LM's tokenizer")
    if mask not in text:
        raise UserError(f"the text has no {mask}: write {mask} where a word should be predicted, or click a word to mask it")
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    notice = ""
    if len(ids) > max_tokens:
        notice = f"the text is {len(ids):,} tokens long; the model reads the first {max_tokens:,}, the rest was cut"
        ids = ids[: max_tokens - 1] + [tokenizer.sep_token_id if tokenizer.sep_token_id is not None else ids[-1]]
        if tokenizer.mask_token_id not in ids:
            raise UserError(f"every {mask} is beyond the first {max_tokens:,} tokens the model reads; move one earlier "
                            "or shorten the text")
    return ids, notice


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top_k: int = 5, max_tokens: int = 512) -> Filled:
    from masklab.generate.predictors import MaskedPredictor

    if not 1 <= top_k <= len(tokenizer):
        raise UserError(f"top_k must be between 1 and the vocabulary size {len(tokenizer)} (got {top_k})")
    ids, notice = encode_with_masks(tokenizer, text, max_tokens)
    device = next(model.parameters()).device
    tensor = torch.tensor([ids], device=device)
    positions = (tensor[0] == tokenizer.mask_token_id).nonzero(as_tuple=True)[0]
    logp = MaskedPredictor(model)(tensor, torch.ones_like(tensor), torch.zeros_like(positions), positions)
    scores, tokens = logp.exp().topk(top_k, dim=-1)
    single = len(positions) == 1
    proposals = []
    for position, row_scores, row_tokens in zip(positions.tolist(), scores.tolist(), tokens.tolist()):
        row = []
        for score, token in zip(row_scores, row_tokens):
            filled = list(ids)
            filled[position] = token
            filled = [t for t in filled if t != tokenizer.pad_token_id]
            row.append({"score": score, "token": token, "token_str": tokenizer.decode([token]),
                        "sequence": tokenizer.decode(filled, skip_special_tokens=single)})
        proposals.append(row)
    return Filled(proposals, notice)


def words(text: str, mask_token: str = "[MASK]") -> list[tuple[str, int, int]]:
    """(word, start, end) of every clickable piece of a text: the mask token, a word (any script: \\w is
    Unicode) or a run of punctuation."""
    pattern = re.compile(re.escape(mask_token) + r"|\w+|[^\w\s]+")
    return [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)]


def toggle_word(text: str, index: int, mask_token: str = "[MASK]") -> str:
    """The text with its `index`-th word replaced by [MASK] (a [MASK] clicked stays: there is nothing to restore)."""
    found = words(text, mask_token)
    if not 0 <= index < len(found):
        return text
    word, start, end = found[index]
    return text if word == mask_token else text[:start] + mask_token + text[end:]
