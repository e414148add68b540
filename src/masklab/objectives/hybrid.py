"""Hybrid pretraining (GPT-BERT: Charpentier & Samuel 2024, arXiv 2410.24159): one decoder trained on a
next-token term and a masked next-token term, each weighted by its share of every batch's blocks
(`hybrid.causal_share`). Its figures are both: causal perplexity and masked accuracy.
"""

from __future__ import annotations

from masklab.config import RunConfig
from masklab.data.shards import PackedBlocks
from masklab.masking import MLMBatcher, measure_masking
from masklab.objectives.clm import CausalBatcher, build_clm, build_mntp, causal_metrics
from masklab.objectives.mlm import masked_lm_metrics
from masklab.objectives.recipe import EvaluateHook, Parts, Setting, rate_field, term


def hybrid_split(batch_size: int, causal_share: float) -> tuple[int, int]:
    """(causal, masked) blocks per micro-batch: the share rounded, each at least one block."""
    causal = min(batch_size - 1, max(1, round(batch_size * causal_share)))
    return causal, batch_size - causal


def heldout(model, tokenizer, blocks: PackedBlocks, cfg: RunConfig, precision: str, unigram=None) -> dict:
    return {
        **causal_metrics(build_clm(model, tokenizer), blocks, cfg.eval, precision),
        **masked_lm_metrics(build_mntp(model, tokenizer), blocks, tokenizer, cfg.eval, cfg.masking, precision),
    }


def parts(s: Setting) -> Parts:
    cfg, tc = s.cfg, s.cfg.train
    causal = build_clm(s.model, s.tokenizer, cfg.data.block_diagonal)
    masked = build_mntp(s.model, s.tokenizer, cfg.data.block_diagonal)
    batcher = MLMBatcher(cfg.masking, s.tokenizer, seed=tc.seed)
    n_causal, n_masked = hybrid_split(max(2, tc.batch_size), cfg.hybrid.causal_share)
    share = cfg.hybrid.causal_share

    def evaluate():
        return {
            **causal_metrics(causal, s.val_blocks, cfg.eval, s.precision),
            **masked_lm_metrics(masked, s.val_blocks, s.tokenizer, cfg.eval, cfg.masking, s.precision),
        }

    # the causal stream draws its blocks from another seed, so the two halves of a batch differ
    terms = [
        term("clm", causal, share, s.train_blocks, CausalBatcher(), n_causal, tc.seed + 7919, s),
        term("mntp", masked, 1.0 - share, s.train_blocks, batcher, n_masked, tc.seed, s),
    ]
    hook = EvaluateHook(
        evaluate,
        lambda: {"masking": measure_masking(batcher, s.train_blocks)},
        lambda step, total: rate_field(cfg, step, total),
    )
    return Parts(terms, [hook], evaluate)
