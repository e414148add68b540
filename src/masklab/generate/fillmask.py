"""Fill-mask: the top-k fillers of each [MASK] in a text, in the model hub's fill-mask schema, for the
`evaluate --fill` command, the quickstart and the playground.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from masklab.errors import UserError
from masklab.generate.predictors import MaskedPredictor
from masklab.runtime import device_of


@dataclass
class Filled:
    """Fill-mask proposals in the model hub's schema: {"score", "token", "token_str", "sequence"} each, exactly
    as a transformers fill-mask pipeline returns them (one mask: the sequence without special tokens;
    several: one list per mask, each sequence filling only its own mask)."""

    proposals: list[list[dict]]  # per mask, in order: the top-k proposals
    notice: str  # e.g. "the text was cut to 512 tokens"

    def hub(self) -> list:
        """The pipeline's shape: a flat list for one mask, a list of lists for several."""
        return self.proposals[0] if len(self.proposals) == 1 else self.proposals


def encode_with_masks(tokenizer, text: str, max_tokens: int) -> tuple[list[int], str]:
    """Token ids ([CLS] ... [SEP]) of `text`, cut to `max_tokens` with a notice; a clear error without a mask."""
    mask = tokenizer.mask_token
    if mask is None:
        raise UserError("this tokenizer has no mask token: fill-mask needs a masked LM's tokenizer")
    ids = tokenizer(text.replace("[MASK]", mask), add_special_tokens=True, verbose=False)["input_ids"]
    if tokenizer.mask_token_id not in ids:
        raise UserError(
            'the text has no [MASK]: write [MASK] where a word should be predicted, e.g. "the [MASK] of the union"'
        )
    notice = ""
    if len(ids) > max_tokens:
        notice = f"the text is {len(ids):,} tokens long; the model reads the first {max_tokens:,}, the rest was cut"
        ids = ids[: max_tokens - 1] + [tokenizer.sep_token_id if tokenizer.sep_token_id is not None else ids[-1]]
        if tokenizer.mask_token_id not in ids:
            raise UserError(
                f"every [MASK] is beyond the first {max_tokens:,} tokens the model reads; move one earlier "
                "or shorten the text"
            )
    return ids, notice


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top_k: int = 5, max_tokens: int | None = None) -> Filled:
    """The top-k fillers of every [MASK] (or the tokenizer's own mask token) in `text`. Only the masked
    positions go through the vocabulary projection, so a long text costs little more than a short one."""
    if not 1 <= top_k <= len(tokenizer):
        raise UserError(f"top-k must be between 1 and the vocabulary size {len(tokenizer)} (got {top_k})")
    limit = min(getattr(model.config, "max_position_embeddings", 512), max_tokens or 10**9)
    ids, notice = encode_with_masks(tokenizer, text, limit)
    tensor = torch.tensor([ids], device=device_of(model))
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
            row.append(
                {
                    "score": score,
                    "token": token,
                    "token_str": tokenizer.decode([token]),
                    "sequence": tokenizer.decode(filled, skip_special_tokens=single),
                }
            )
        proposals.append(row)
    return Filled(proposals, notice)
