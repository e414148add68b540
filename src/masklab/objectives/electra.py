"""Replaced-token detection (ELECTRA: Clark et al. 2020, arXiv 2003.10555).

A small masked-LM generator fills the masked positions of a block with tokens sampled from its own
predictions; the discriminator (the run's model) reads the filled-in block and says, for every token,
whether it is the original or a replacement. Every token gives the discriminator a training signal, not
only the ~15% masked ones, which is why ELECTRA-Small beat far larger MLMs at equal compute. The two
networks share their embeddings (models/electra.py) and train together on

    loss = mlm (generator, masked positions) + electra.rtd_weight · rtd (discriminator, every token)

The sample is not back-propagated through (the paper trains the generator by maximum likelihood, not
adversarially). It is drawn by inverse-CDF from a uniform number per position that the block's own
counter-based stream gives (masking.core), keyed like its masks by (seed, block, pass): so the draws are a
pure function of the run's seed and the batch, and a resumed run or another process count draws the same.
A sample that equals the original token counts as original (the paper's labels).

Figures: the generator's masked accuracy / loss on the fixed evaluation masks (with the unigram baseline and
its pseudo-perplexity), and the discriminator's accuracy, ROC AUC and loss at telling replaced from original
non-special tokens on corruptions drawn from those masks with the fixed evaluation seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from masklab.config import EvalConfig, MaskingConfig, RunConfig
from masklab.data.shards import PackedBlocks
from masklab.errors import UserError
from masklab.masking import MLMBatcher, measure_masking
from masklab.masking.batches import eval_batches
from masklab.masking.core import derive_seed
from masklab.models.checkpoint import resolve_checkpoint
from masklab.models.electra import ElectraPair, build_generator, load_generator
from masklab.objectives.mlm import document_mask, most_frequent_token, pseudo_perplexity
from masklab.objectives.recipe import EvaluateHook, Parts, Setting, rate_field, term
from masklab.runtime import autocast_context, device_of

SAMPLE = 7  # the block random stream of the generator's draws (masking.core uses 1-6)


class SampledBatcher(MLMBatcher):
    """An MLMBatcher whose batches also carry "uniform" (B, T): one number in [0, 1) per position for the generator's
    draw, from the block's own counter-based stream (a pure function of the seed, the block and the pass)."""

    def __call__(self, blocks, block_ids, epochs=0, features: dict | None = None, rate: float | None = None) -> dict:
        batch = super().__call__(blocks, block_ids, epochs, features, rate)
        rng = self.random(block_ids, epochs, batch["input_ids"].shape[1])
        return {**batch, "uniform": torch.from_numpy(rng.uniform(SAMPLE)).float()}  # (B, T)


def sample_tokens(logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """(M,) token ids drawn from softmax((M, V) logits) by inverse CDF at the (M,) `uniform` numbers."""
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)  # (M, V)
    target = (uniform.to(cdf.dtype) * cdf[:, -1]).unsqueeze(1)  # scaled by the total: rounding cannot run off the end
    return torch.searchsorted(cdf, target).squeeze(1).clamp(max=logits.shape[-1] - 1)


class ElectraObjective(nn.Module):
    """forward(input_ids, labels, uniform) on a masked batch -> {"loss": mlm + rtd_weight * rtd, the two losses,
    the generator's masked logits and targets, the discriminator's (B, T) logits and replaced labels}."""

    def __init__(self, pair: ElectraPair, rtd_weight: float, document_sep_id: int | None = None):
        super().__init__()
        self.pair = pair
        self.rtd_weight = rtd_weight
        self.document_sep_id = document_sep_id
        self.additive_mask = pair.config._attn_implementation == "eager"  # eager adds the mask to its scores
        self.last: dict[str, torch.Tensor] = {}  # the latest micro-batch's two losses (detached), for the log line

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, uniform: torch.Tensor) -> dict:
        mask = None
        if self.document_sep_id is not None:
            mask = document_mask(input_ids, self.document_sep_id, additive=self.additive_mask)
        selected = labels != -100  # (B, T)
        logits = self.pair.generator_head(self.pair.generator_hidden(input_ids, mask)[selected])  # (M, V)
        targets = labels[selected]  # (M,)
        mlm = F.cross_entropy(logits.float(), targets)
        original = torch.where(selected, labels, input_ids)  # (B, T) the block before masking
        corrupted = original.clone()
        corrupted[selected] = sample_tokens(logits.detach(), uniform[selected])
        replaced = corrupted != original  # (B, T)
        rtd_logits = self.pair.discriminator_head(self.pair.discriminator_hidden(corrupted, mask))  # (B, T)
        rtd = F.binary_cross_entropy_with_logits(rtd_logits.float(), replaced.float())
        self.last = {"gen_loss": mlm.detach(), "rtd_loss": rtd.detach()}
        return {
            "loss": mlm + self.rtd_weight * rtd,
            "mlm_loss": mlm,
            "rtd_loss": rtd,
            "logits": logits,
            "targets": targets,
            "original": original,
            "rtd_logits": rtd_logits,
            "replaced": replaced,
        }


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC: the chance that a random positive scores above a random negative (Mann-Whitney rank sum, ties
    counted half); nan when either class is empty."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    return float((rankdata(scores)[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def electra_metrics(
    objective: ElectraObjective,
    blocks: PackedBlocks,
    tokenizer,
    eval_cfg: EvalConfig,
    masking_cfg: MaskingConfig,
    precision: str = "fp32",
    unigram_counts: np.ndarray | None = None,
) -> dict:
    """The generator's masked figures (+ unigram baseline) and the discriminator's replaced-token figures on
    fixed masks and fixed draws (eval.seed)."""
    batcher = SampledBatcher(masking_cfg, tokenizer, seed=eval_cfg.seed)
    baseline = most_frequent_token(unigram_counts, batcher.special_ids.tolist()) if unigram_counts is not None else None
    was_training = objective.training
    objective.eval()
    device = device_of(objective)
    masked_loss = correct = baseline_correct = n = 0.0
    scores, labels = [], []
    for batch in eval_batches(blocks, batcher, eval_cfg):
        with autocast_context(precision, device.type):
            out = objective(**{k: v.to(device) for k, v in batch.items()})
        m = len(out["targets"])
        masked_loss += float(out["mlm_loss"]) * m
        correct += int((out["logits"].argmax(-1) == out["targets"]).sum())
        if baseline is not None:
            baseline_correct += int((out["targets"] == baseline).sum())
        n += m
        eligible = ~torch.isin(out["original"], batcher.special_ids.to(device))  # specials are never replaced
        scores.append(out["rtd_logits"][eligible].float().cpu())
        labels.append(out["replaced"][eligible].cpu())
    objective.train(was_training)
    scores, labels = torch.cat(scores), torch.cat(labels)
    loss = masked_loss / max(n, 1)
    metrics = {
        "masked_accuracy": correct / max(n, 1),
        "masked_loss": loss,
        "masked_perplexity": math.exp(min(loss, 50.0)),
        "masked_tokens": int(n),
        "rtd_accuracy": float(((scores > 0) == labels).float().mean()),
        "rtd_auc": rank_auc(scores.numpy(), labels.numpy()),
        "rtd_loss": float(F.binary_cross_entropy_with_logits(scores, labels.float())),
        "replaced_fraction": float(labels.float().mean()),  # of non-special tokens: how often the generator missed
        "rtd_tokens": len(labels),
    }
    if baseline is not None:
        metrics["unigram_accuracy"] = baseline_correct / max(n, 1)
    return metrics


def electra_objective(pair: ElectraPair, tokenizer, cfg: RunConfig) -> ElectraObjective:
    sep = tokenizer.sep_token_id if cfg.data.block_diagonal else None
    return ElectraObjective(pair, cfg.electra.rtd_weight, sep)


def heldout(model: ElectraPair, tokenizer, blocks: PackedBlocks, cfg: RunConfig, precision: str, unigram=None) -> dict:
    """Generator and discriminator figures on fixed masks and draws, and the generator's pseudo-perplexity."""
    return {
        **electra_metrics(
            electra_objective(model, tokenizer, cfg), blocks, tokenizer, cfg.eval, cfg.masking, precision, unigram
        ),
        "pseudo_perplexity": pseudo_perplexity(
            model.generator, tokenizer, blocks, cfg.eval.pppl_sequences, cfg.eval.pppl_max_length, precision
        ),
    }


def generator_for(discriminator, cfg: RunConfig):
    """A fresh generator for a fresh discriminator; continuing from an electra run, that run's generator."""
    if discriminator.config.model_type != "electra":
        raise UserError(
            f"train.objective=electra trains an ELECTRA discriminator, but model.init={cfg.model.init} holds a "
            f"{discriminator.config.model_type} model; continue from an electra run, or drop model.init"
        )
    if not cfg.model.init:
        return build_generator(discriminator, cfg.electra.generator_fraction, derive_seed(cfg.train.seed, SAMPLE))
    return load_generator(resolve_checkpoint(cfg.model.init), discriminator)


def parts(s: Setting) -> Parts:
    """One term: generator MLM + weighted replaced-token detection on each masked batch; the generator trains and
    is saved beside the run's model (the discriminator)."""
    cfg, tc = s.cfg, s.cfg.train
    pair = ElectraPair(generator_for(s.model, cfg), s.model)
    objective = electra_objective(pair, s.tokenizer, cfg)
    batcher = SampledBatcher(cfg.masking, s.tokenizer, seed=tc.seed)

    def evaluate():
        return electra_metrics(objective, s.val_blocks, s.tokenizer, cfg.eval, cfg.masking, s.precision)

    def on_log(step: int, total: int) -> dict:
        return {**rate_field(cfg, step, total), **{k: float(v) for k, v in objective.last.items()}}

    hook = EvaluateHook(evaluate, lambda: {"masking": measure_masking(batcher, s.train_blocks)}, on_log)
    return Parts(
        [term("electra", objective, 1.0, s.train_blocks, batcher, tc.batch_size, tc.seed, s)],
        [hook],
        lambda: heldout(pair, s.tokenizer, s.val_blocks, cfg, s.precision, s.unigram_counts),
        companions={"generator": pair.generator},
    )
