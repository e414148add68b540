"""What a generation step asks a model: log-probabilities of the tokens at some positions of a sequence.

    MaskedPredictor   a masked LM: p(x_i | everything else), head run only at the asked positions
    CausalPredictor   a decoder: p(x_i | x_<i), from the hidden state one position earlier
    FusedPredictor    a product of experts of the two (Hinton 2002): (1 - w) log p_MLM + w log p_CLM,
                      renormalised; w = 0 and w = 1 return each model's own log-probabilities

Each one is called with the current ids (B, T), the padding mask (B, T) and K (row, position) pairs
(two (K,) tensors) and returns (K, V) float32 log-probabilities: the encoder runs on every row, the
vocabulary projection only at the K positions asked for.
"""

from __future__ import annotations

import torch

from masklab.errors import UserError
from masklab.objectives.mlm import MLM_PARTS
from masklab.runtime import autocast_context


def _at(hidden: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    return hidden[rows, positions.clamp(0, hidden.shape[1] - 1)]


class MaskedPredictor:
    def __init__(self, model, precision: str = "fp32"):
        self.model, self.precision = model.eval(), precision
        self.parts = MLM_PARTS.get(model.config.model_type)

    @torch.no_grad()
    def __call__(
        self, ids: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        with autocast_context(self.precision, ids.device.type):
            if self.parts is None:
                logits = _at(self.model(input_ids=ids, attention_mask=attention_mask).logits, rows, positions)
            else:
                encoder = getattr(self.model, self.parts[0])
                logits = _at(encoder(input_ids=ids, attention_mask=attention_mask).last_hidden_state, rows, positions)
                for name in self.parts[1]:
                    logits = getattr(self.model, name)(logits)
        return torch.log_softmax(logits.float(), dim=-1)


class CausalPredictor:
    """Position i is predicted from the hidden state at i - 1; [MASK]s still to the left are part of the
    context (exact for left-to-right decoding, where the left context is always complete)."""

    def __init__(self, model, precision: str = "fp32"):
        self.model, self.precision = model.eval(), precision

    @torch.no_grad()
    def __call__(
        self, ids: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        with autocast_context(self.precision, ids.device.type):
            hidden = self.model.base_model(input_ids=ids, attention_mask=attention_mask).last_hidden_state
            logits = self.model.get_output_embeddings()(_at(hidden, rows, positions - 1))
        return torch.log_softmax(logits.float(), dim=-1)


class FusedPredictor:
    def __init__(self, masked: MaskedPredictor, causal: CausalPredictor, weight: float):
        if not 0.0 <= weight <= 1.0:
            raise UserError(
                f"the fusion weight must be between 0 (the masked LM alone) and 1 (the causal LM alone), got {weight}"
            )
        self.masked, self.causal, self.weight = masked, causal, weight

    def __call__(self, ids, attention_mask, rows, positions) -> torch.Tensor:
        if self.weight == 0.0:
            return self.masked(ids, attention_mask, rows, positions)
        if self.weight == 1.0:
            return self.causal(ids, attention_mask, rows, positions)
        mixed = (1.0 - self.weight) * self.masked(ids, attention_mask, rows, positions) + self.weight * self.causal(
            ids, attention_mask, rows, positions
        )
        return torch.log_softmax(mixed, dim=-1)


def check_same_vocabulary(a, b, what: str) -> None:
    """Fusion adds log-probabilities token by token, so both models must number tokens the same way."""
    if a.get_vocab() != b.get_vocab():
        raise UserError(
            f"{what} has another tokenizer than the masked LM (their vocabularies differ); fuse models "
            "trained on the same tokenizer, e.g. a clm run and an mlm run of one corpus"
        )
