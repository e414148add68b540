"""The masked-LM objective, with sparse prediction, and its honest evaluation figures.

Sparse prediction (Cramming arXiv 2212.14034, MosaicBERT, ModernBERT): the encoder runs on every
token, but the prediction head and the (B*T, V) vocabulary projection run only at the ~15% masked
positions. The loss is exactly the dense loss, since unmasked positions carry label -100 anyway.
With `sparse_final_layer`, the encoder's last layer is also computed at those positions only
(masklab.models.sparse).

Figures: masked accuracy / loss on validation blocks with a fixed masking seed (every model, every
evaluation sees the same masks), `masked_perplexity = exp(masked loss)` (over the masked positions
only: not comparable with a causal LM's perplexity), the unigram baseline (always the most frequent
training token, on the same masks: a model that doesn't clearly beat it has learned nothing about
context), and pseudo-perplexity (Salazar et al. 2020, arXiv 1910.14659).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from masklab.config import EvalConfig, MaskingConfig, RunConfig
from masklab.data.shards import PackedBlocks
from masklab.masking import MLMBatcher, measure_masking
from masklab.masking.batches import eval_batches
from masklab.models.sparse import encode_selected, supports_sparse_final_layer
from masklab.objectives.recipe import EvaluateHook, Parts, Setting, rate_field, term
from masklab.runtime import autocast_context, device_of

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
        self.sparse_final_layer = bool(
            self.parts and sparse_final_layer and supports_sparse_final_layer(getattr(model, self.parts[0]))
        )

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask=None, loss_weight=None) -> dict:
        if self.document_sep_id is not None and attention_mask is None:
            attention_mask = document_mask(input_ids, self.document_sep_id, additive=self.additive_mask)
        selected = labels != -100  # (B, T)
        if self.parts is not None:
            encoder = getattr(self.model, self.parts[0])
            if self.sparse_final_layer and (
                attention_mask is None or attention_mask.dim() == 4
            ):  # a (B, T) padding mask: HF prepares it
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


def build_mlm(model, tokenizer, sparse: bool = True, block_diagonal: bool = False, sparse_final_layer: bool = True):
    """Masked-LM loss on a *ForMaskedLM model; batches are {"input_ids", "labels"[, "loss_weight"]} (B, T) from
    MLMBatcher."""
    sep = tokenizer.sep_token_id if block_diagonal else None
    return MaskedLMObjective(model, sparse=sparse, document_sep_id=sep, sparse_final_layer=sparse_final_layer)


def mlm_objective(model, tokenizer, cfg) -> MaskedLMObjective:
    """The objective a run config asks for: sparse or dense head, block-diagonal or full attention."""
    return build_mlm(
        model, tokenizer, cfg.model.sparse_prediction, cfg.data.block_diagonal, cfg.model.sparse_final_layer
    )


def most_frequent_token(unigram_counts: np.ndarray, special_ids) -> int:
    counts = unigram_counts.copy()
    counts[list(special_ids)] = -1
    return int(counts.argmax())


@torch.no_grad()
def masked_lm_metrics(
    objective: MaskedLMObjective,
    blocks: PackedBlocks,
    tokenizer,
    eval_cfg: EvalConfig,
    masking_cfg: MaskingConfig,
    precision: str = "fp32",
    unigram_counts: np.ndarray | None = None,
) -> dict:
    """Masked accuracy, loss and perplexity (+ unigram baseline) on fixed-seed masks."""
    batcher = MLMBatcher(masking_cfg, tokenizer, seed=eval_cfg.seed)
    baseline = most_frequent_token(unigram_counts, batcher.special_ids.tolist()) if unigram_counts is not None else None
    was_training = objective.training
    objective.eval()
    total_loss = 0.0
    correct = baseline_correct = n = 0
    device = device_of(objective)
    for batch in eval_batches(blocks, batcher, eval_cfg):
        with autocast_context(precision, device.type):
            out = objective(batch["input_ids"].to(device), batch["labels"].to(device))
        m = len(out["targets"])
        total_loss += float(out["loss"]) * m
        correct += int((out["logits"].argmax(-1) == out["targets"]).sum())
        if baseline is not None:
            baseline_correct += int((out["targets"] == baseline).sum())
        n += m
    objective.train(was_training)
    loss = total_loss / max(n, 1)
    metrics = {
        "masked_accuracy": correct / max(n, 1),
        "masked_loss": loss,
        "masked_perplexity": math.exp(min(loss, 50.0)),
        "masked_tokens": n,
    }
    if baseline is not None:
        metrics["unigram_accuracy"] = baseline_correct / max(n, 1)
    return metrics


@torch.no_grad()
def pseudo_perplexity(
    model,
    tokenizer,
    blocks: PackedBlocks,
    n_sequences: int,
    max_length: int,
    precision: str = "fp32",
    batch_size: int = 128,
) -> float:
    """PPPL over the first `n_sequences` validation blocks, truncated to `max_length` tokens."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    nll, count = 0.0, 0
    n = min(n_sequences, len(blocks))
    for ids in torch.as_tensor(blocks.gather(np.arange(n)))[:, :max_length]:
        positions = torch.nonzero(~torch.isin(ids, special)).squeeze(1)  # (P,)
        for chunk in positions.split(batch_size):
            copies = ids.repeat(len(chunk), 1)  # (P', L): one copy per masked position
            copies[torch.arange(len(chunk)), chunk] = tokenizer.mask_token_id
            with autocast_context(precision, device.type):
                logits = model(input_ids=copies.to(device)).logits  # (P', L, V)
            logp = torch.log_softmax(logits[torch.arange(len(chunk)), chunk.to(device)].float(), dim=-1).cpu()
            nll -= float(logp[torch.arange(len(chunk)), ids[chunk]].sum())
            count += len(chunk)
    model.train(was_training)
    mean = nll / max(count, 1)
    return math.exp(mean) if mean < 700 else math.inf  # a diverged model: infinite, not an OverflowError


def heldout(model, tokenizer, blocks: PackedBlocks, cfg: RunConfig, precision: str, unigram=None) -> dict:
    """Masked figures on fixed masks, the unigram baseline and pseudo-perplexity, on `blocks`."""
    return {
        **masked_lm_metrics(
            mlm_objective(model, tokenizer, cfg), blocks, tokenizer, cfg.eval, cfg.masking, precision, unigram
        ),
        "pseudo_perplexity": pseudo_perplexity(
            model, tokenizer, blocks, cfg.eval.pppl_sequences, cfg.eval.pppl_max_length, precision
        ),
    }


def parts(s: Setting) -> Parts:
    """One masked-LM term (every masking strategy); masked figures at each evaluation, PPPL at the end."""
    cfg, tc = s.cfg, s.cfg.train
    objective = mlm_objective(s.model, s.tokenizer, cfg)
    batcher = MLMBatcher(cfg.masking, s.tokenizer, seed=tc.seed)

    def evaluate():
        return masked_lm_metrics(objective, s.val_blocks, s.tokenizer, cfg.eval, cfg.masking, s.precision)

    hook = EvaluateHook(
        evaluate,
        lambda: {"masking": measure_masking(batcher, s.train_blocks)},
        lambda step, total: rate_field(cfg, step, total),
    )
    return Parts(
        [term("mlm", objective, 1.0, s.train_blocks, batcher, tc.batch_size, tc.seed, s)],
        [hook],
        lambda: heldout(s.model, s.tokenizer, s.val_blocks, cfg, s.precision, s.unigram_counts),
    )
