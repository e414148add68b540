"""The masked-LM objective, with sparse prediction.

Sparse prediction (Cramming arXiv 2212.14034, MosaicBERT, ModernBERT): the encoder runs on every
token, but the prediction head and the (B*T, V) vocabulary projection run only at the ~15% masked
positions. The loss is exactly the dense loss, since unmasked positions carry label -100 anyway.
With `sparse_final_layer`, the encoder's last layer is also computed at those positions only
(masklab.models.sparse).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from masklab.models.sparse import encode_selected, supports_sparse_final_layer
from masklab.registry import register

# model_type -> (encoder attribute, head attributes applied in order): the two halves of a *ForMaskedLM model.
MLM_PARTS = {
    "bert": ("bert", ("cls",)),
    "roberta": ("roberta", ("lm_head",)),
    "xlm-roberta": ("roberta", ("lm_head",)),
    "camembert": ("roberta", ("lm_head",)),
    "modernbert": ("model", ("head", "decoder")),
}


def document_mask(input_ids: torch.Tensor, sep_id: int, additive: bool = False) -> torch.Tensor:
    """(B, 1, T, T) attention mask: a token attends only within its own packed document.

    Each [SEP] closes the document it ends; the block's leading [CLS] belongs to the first one.
    Boolean for SDPA; `additive` gives the 0 / -inf-like float form eager attention adds to its scores.
    """
    is_sep = (input_ids == sep_id).long()
    doc = torch.cumsum(is_sep, dim=1) - is_sep  # (B, T) document index within the block
    same = (doc[:, :, None] == doc[:, None, :]).unsqueeze(1)
    if additive:
        return torch.zeros(same.shape, device=input_ids.device).masked_fill_(~same, torch.finfo(torch.float32).min)
    return same


class MaskedLMObjective(nn.Module):
    """Wraps a transformers *ForMaskedLM model; forward returns the loss and the masked-position logits.

    A module (rather than a function) so DistributedDataParallel sees the whole computation. With
    `document_sep_id`, packed documents are kept apart by a block-diagonal attention mask (SDPA).
    """

    def __init__(self, model, sparse: bool = True, document_sep_id: int | None = None, sparse_final_layer: bool = True):
        super().__init__()
        self.model = model
        parts = MLM_PARTS.get(model.config.model_type)
        self.parts = parts if sparse else None
        self.document_sep_id = document_sep_id
        self.additive_mask = model.config._attn_implementation == "eager"  # eager adds the mask to its scores
        self.sparse_final_layer = bool(self.parts and sparse_final_layer
                                       and supports_sparse_final_layer(getattr(model, self.parts[0])))

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask=None, loss_weight=None) -> dict:
        if self.document_sep_id is not None and attention_mask is None:
            attention_mask = document_mask(input_ids, self.document_sep_id, additive=self.additive_mask)
        selected = labels != -100  # (B, T)
        if self.parts is not None:
            encoder = getattr(self.model, self.parts[0])
            if self.sparse_final_layer and (attention_mask is None or attention_mask.dim() == 4):  # a (B, T) padding mask: HF prepares it
                hidden = encode_selected(encoder, input_ids, selected, attention_mask)  # (M, H)
            else:
                hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[selected]
            for name in self.parts[1]:
                hidden = getattr(self.model, name)(hidden)
            logits = hidden  # (M, V)
        else:
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[selected]  # (M, V)
        targets = labels[selected]  # (M,)
        return {"loss": masked_loss(logits, targets, loss_weight, selected), "logits": logits, "targets": targets}


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, loss_weight: torch.Tensor | None, selected: torch.Tensor):
    """Mean cross-entropy over the predicted tokens, or, with masked diffusion's (B, T) `loss_weight`, the
    weighted sum that is its ELBO (masklab.masking.diffusion)."""
    if loss_weight is None:
        return F.cross_entropy(logits.float(), targets)
    return (F.cross_entropy(logits.float(), targets, reduction="none") * loss_weight[selected]).sum()


@register("objective", "mlm")
def build_mlm(model, tokenizer, sparse: bool = True, block_diagonal: bool = False, sparse_final_layer: bool = True):
    """Masked-LM loss on a *ForMaskedLM model; batches are {"input_ids", "labels"[, "loss_weight"]} (B, T) from MLMBatcher."""
    sep = tokenizer.sep_token_id if block_diagonal else None
    return MaskedLMObjective(model, sparse=sparse, document_sep_id=sep, sparse_final_layer=sparse_final_layer)


def mlm_objective(model, tokenizer, cfg) -> MaskedLMObjective:
    """The objective a run config asks for: sparse or dense head, block-diagonal or full attention."""
    return build_mlm(model, tokenizer, cfg.model.sparse_prediction, cfg.data.block_diagonal, cfg.model.sparse_final_layer)
