"""Causal objectives on a decoder: next-token prediction (clm) and masked next-token prediction (the
masked half of hybrid training).

clm: the same packed blocks the masked LM trains on, `[CLS] t_1 ... t_{T-1}` with [SEP] closing each
document: [CLS] is the BOS and [SEP] the EOS, there is no padding, and every position predicts the
next token (T-1 predictions per block). With `data.block_diagonal` a token also attends only within
its own document.

Masked next-token prediction (GPT-BERT: Charpentier & Samuel 2024, arXiv 2410.24159): the same
decoder, run with bidirectional attention on a masked block, predicts each masked token from the
position *before* it, so one output head (the next-token head) serves both halves and the model can be
scored causally and bidirectionally. Only the masked positions reach the vocabulary projection.

Figures: next-token loss, perplexity = exp(loss) and next-token accuracy over every position of the
validation blocks. This perplexity is over whole text, so it compares causal models with each other
(same tokenizer), never with a masked LM's masked or pseudo-perplexity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from masklab.config import EvalConfig, RunConfig
from masklab.data.shards import PackedBlocks
from masklab.objectives.mlm import document_mask, masked_loss
from masklab.objectives.recipe import EvaluateHook, Parts, Setting, block_ranges, term, token_metrics


def attention_mask_4d(
    input_ids: torch.Tensor, causal: bool, eager: bool, sep_id: int | None = None, padding: torch.Tensor | None = None
) -> torch.Tensor | None:
    """The (B, 1, T, T) mask a decoder gets, or None for plain causal attention (the model's default).

    transformers uses a 4-D mask as given, so a bidirectional or block-diagonal mask switches a
    decoder's attention pattern without touching its code. `padding` (B, T) marks real tokens; eager
    attention adds the mask to its scores, SDPA takes it as booleans.
    """
    if causal and sep_id is None and padding is None:
        return None
    B, T = input_ids.shape
    allowed = torch.ones(B, 1, T, T, dtype=torch.bool, device=input_ids.device)
    if causal:
        allowed &= torch.ones(T, T, dtype=torch.bool, device=input_ids.device).tril()
    if sep_id is not None:
        allowed &= document_mask(input_ids, sep_id)
    if padding is not None:
        allowed &= padding.bool()[:, None, None, :]
        allowed |= torch.eye(T, dtype=torch.bool, device=input_ids.device)  # padded queries see themselves: no NaN rows
    if eager:
        return torch.zeros(allowed.shape, device=input_ids.device).masked_fill_(
            ~allowed, torch.finfo(torch.float32).min
        )
    return allowed


class CausalBatcher:
    """Packed blocks as they are: the batch source of the clm objective (the labels are the inputs)."""

    features: tuple[str, ...] = ()

    def attach(self, blocks, show_progress: bool = True) -> None:
        pass

    def rate_at(self, progress: float) -> float:
        return 0.0

    def from_blocks(self, blocks, block_ids, epochs=0, rate: float | None = None) -> dict:
        return {"input_ids": torch.as_tensor(blocks.gather(block_ids), dtype=torch.long)}


def _parts(model):
    """(decoder body, output projection) of a *ForCausalLM model."""
    return model.base_model, model.get_output_embeddings()


class CausalLMObjective(nn.Module):
    """forward(input_ids) -> {"loss", "logits", "targets"}: mean next-token cross-entropy over every position."""

    def __init__(self, model, document_sep_id: int | None = None):
        super().__init__()
        self.model = model
        self.document_sep_id = document_sep_id
        self.eager = model.config._attn_implementation == "eager"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict:
        body, head = _parts(self.model)
        mask = attention_mask_4d(input_ids, True, self.eager, self.document_sep_id, attention_mask)
        hidden = body(input_ids=input_ids, attention_mask=mask).last_hidden_state[:, :-1]  # (B, T-1, H)
        targets = input_ids[:, 1:]
        if attention_mask is not None:  # padded batches (sentence scoring): padding predicts nothing
            keep = attention_mask[:, 1:].bool()
            hidden, targets = hidden[keep], targets[keep]
        logits = head(hidden.reshape(-1, hidden.shape[-1]))  # (N, V)
        targets = targets.reshape(-1)
        loss = F.cross_entropy(logits.float(), targets)
        return {"loss": loss, "logits": logits, "targets": targets}


class MaskedNextTokenObjective(nn.Module):
    """forward(input_ids, labels) on MLMBatcher batches: bidirectional attention, each masked token
    predicted from the position before it (labels (B, T) with -100 where nothing is predicted)."""

    def __init__(self, model, document_sep_id: int | None = None):
        super().__init__()
        self.model = model
        self.document_sep_id = document_sep_id
        self.eager = model.config._attn_implementation == "eager"

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        loss_weight: torch.Tensor | None = None,
    ) -> dict:
        body, head = _parts(self.model)
        mask = attention_mask_4d(input_ids, False, self.eager, self.document_sep_id, attention_mask)
        hidden = body(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, H)
        selected = labels[:, 1:] != -100  # (B, T-1): position i predicts token i+1
        logits = head(hidden[:, :-1][selected])  # (M, V)
        targets = labels[:, 1:][selected]
        weight = None if loss_weight is None else loss_weight[:, 1:]
        return {"loss": masked_loss(logits, targets, weight, selected), "logits": logits, "targets": targets}


def build_clm(model, tokenizer, block_diagonal: bool = False) -> CausalLMObjective:
    """Next-token loss on a *ForCausalLM model; batches are {"input_ids"} (B, T) packed blocks."""
    return CausalLMObjective(model, tokenizer.sep_token_id if block_diagonal else None)


def build_mntp(model, tokenizer, block_diagonal: bool = False) -> MaskedNextTokenObjective:
    """Masked next-token loss on a *ForCausalLM model; batches are {"input_ids", "labels"} from MLMBatcher."""
    return MaskedNextTokenObjective(model, tokenizer.sep_token_id if block_diagonal else None)


def causal_metrics(objective, blocks: PackedBlocks, eval_cfg: EvalConfig, precision: str = "fp32") -> dict:
    """{"causal_loss", "perplexity", "next_token_accuracy", "predicted_tokens"} of a CausalLMObjective."""
    batches = (
        {"input_ids": torch.as_tensor(blocks.gather(ids), dtype=torch.long)} for ids in block_ranges(blocks, eval_cfg)
    )
    m = token_metrics(objective, batches, precision, "causal_")
    return {
        "causal_loss": m["causal_loss"],
        "perplexity": m["causal_perplexity"],
        "next_token_accuracy": m["causal_accuracy"],
        "predicted_tokens": m["causal_tokens"],
    }


def heldout(model, tokenizer, blocks: PackedBlocks, cfg: RunConfig, precision: str, unigram=None) -> dict:
    return causal_metrics(build_clm(model, tokenizer), blocks, cfg.eval, precision)


def parts(s: Setting) -> Parts:
    """One next-token term on the packed blocks the masked LM trains on."""
    cfg, tc = s.cfg, s.cfg.train
    objective = build_clm(s.model, s.tokenizer, cfg.data.block_diagonal)

    def evaluate():
        return causal_metrics(objective, s.val_blocks, cfg.eval, s.precision)

    return Parts(
        [term("clm", objective, 1.0, s.train_blocks, CausalBatcher(), tc.batch_size, tc.seed, s)],
        [EvaluateHook(evaluate)],
        evaluate,
    )
