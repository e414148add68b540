"""What each pretraining objective puts into the one loop: its terms, its hooks and its final figures.

    mlm      one masked-LM term (every masking strategy)
    clm      one next-token term on the same packed blocks
    seq2seq  one span-corruption (or text-infilling) term on an encoder-decoder
    hybrid   a next-token term and a masked next-token term on one decoder, weighted by their share
             of each batch (GPT-BERT)

`train.objective` picks one from OBJECTIVES; the loop itself never knows which it runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from masklab.config import RunConfig
from masklab.data.batches import TrainBatches
from masklab.data.shards import PackedBlocks
from masklab.evaluate.heldout import causal_metrics, seq2seq_metrics
from masklab.evaluate.masked import masked_lm_metrics, pseudo_perplexity
from masklab.masking import MLMBatcher, measure_masking
from masklab.objectives.clm import CausalBatcher, build_clm, build_mntp
from masklab.objectives.mlm import mlm_objective
from masklab.objectives.seq2seq import SpanCorruptor, build_seq2seq
from masklab.train import Hook, Term


@dataclass
class Setting:
    """Everything an objective's parts are built from."""

    model: object
    tokenizer: object
    train_blocks: PackedBlocks
    val_blocks: PackedBlocks
    cfg: RunConfig
    precision: str
    unigram_counts: object
    show_progress: bool


@dataclass
class Parts:
    terms: list[Term]
    hooks: list[Hook]
    final: Callable[[], dict]  # figures for summary.json after training (validation split)


class EvaluateHook(Hook):
    """Periodic validation by a function of no arguments, plus optional start / log-line fields."""

    def __init__(self, evaluate: Callable[[], dict], at_start: Callable[[], dict] | None = None,
                 on_log: Callable[[int, int], dict] | None = None):
        self._evaluate, self._at_start, self._on_log = evaluate, at_start, on_log

    def at_start(self) -> dict:
        return self._at_start() if self._at_start else {}

    def on_log(self, step: int, total_steps: int) -> dict:
        return self._on_log(step, total_steps) if self._on_log else {}

    def evaluate(self, step: int) -> dict:
        return self._evaluate()


def _term(name: str, objective, weight: float, blocks: PackedBlocks, batcher, batch_size: int, seed: int,
          s: Setting) -> Term:
    return Term(name, objective, weight, lambda n: TrainBatches(blocks, batcher, batch_size, seed, n, s.show_progress),
                batch_size * blocks.seq_length)


def _rate_field(cfg: RunConfig, step: int, total: int) -> dict:
    """The log line's masking rate; masked diffusion draws one per block, so it has none."""
    return {} if cfg.masking.diffusion_on else {"mask_rate": cfg.masking.rate_at(step / total)}


def mlm_parts(s: Setting) -> Parts:
    cfg, tc = s.cfg, s.cfg.train
    objective = mlm_objective(s.model, s.tokenizer, cfg)
    batcher = MLMBatcher(cfg.masking, s.tokenizer, seed=tc.seed)

    def evaluate(unigram=None):
        return masked_lm_metrics(objective, s.val_blocks, s.tokenizer, cfg.eval, cfg.masking, s.precision, unigram)

    def final():
        return {**evaluate(s.unigram_counts),
                "pseudo_perplexity": pseudo_perplexity(s.model, s.tokenizer, s.val_blocks, cfg.eval.pppl_sequences,
                                                       cfg.eval.pppl_max_length, s.precision)}
    hook = EvaluateHook(evaluate, lambda: {"masking": measure_masking(batcher, s.train_blocks)},
                        lambda step, total: _rate_field(cfg, step, total))
    return Parts([_term("mlm", objective, 1.0, s.train_blocks, batcher, tc.batch_size, tc.seed, s)], [hook], final)


def clm_parts(s: Setting) -> Parts:
    cfg, tc = s.cfg, s.cfg.train
    objective = build_clm(s.model, s.tokenizer, cfg.data.block_diagonal)

    def evaluate():
        return causal_metrics(objective, s.val_blocks, cfg.eval, s.precision)
    return Parts([_term("clm", objective, 1.0, s.train_blocks, CausalBatcher(), tc.batch_size, tc.seed, s)],
                 [EvaluateHook(evaluate)], evaluate)


def seq2seq_parts(s: Setting) -> Parts:
    cfg, tc = s.cfg, s.cfg.train
    objective = build_seq2seq(s.model, s.tokenizer)
    corruptor = SpanCorruptor(cfg.seq2seq, s.tokenizer, tc.seed, cfg.data.seq_length)
    fixed = SpanCorruptor(cfg.seq2seq, s.tokenizer, cfg.eval.seed, cfg.data.seq_length)

    def evaluate():
        return seq2seq_metrics(objective, fixed, s.val_blocks, cfg.eval, s.precision)
    return Parts([_term("seq2seq", objective, 1.0, s.train_blocks, corruptor, tc.batch_size, tc.seed, s)],
                 [EvaluateHook(evaluate)], evaluate)


def hybrid_split(batch_size: int, causal_share: float) -> tuple[int, int]:
    """(causal, masked) blocks per micro-batch: the share rounded, each at least one block."""
    causal = min(batch_size - 1, max(1, round(batch_size * causal_share)))
    return causal, batch_size - causal


def hybrid_parts(s: Setting) -> Parts:
    cfg, tc = s.cfg, s.cfg.train
    causal = build_clm(s.model, s.tokenizer, cfg.data.block_diagonal)
    masked = build_mntp(s.model, s.tokenizer, cfg.data.block_diagonal)
    batcher = MLMBatcher(cfg.masking, s.tokenizer, seed=tc.seed)
    n_causal, n_masked = hybrid_split(max(2, tc.batch_size), cfg.hybrid.causal_share)
    share = cfg.hybrid.causal_share

    def evaluate():
        return {**causal_metrics(causal, s.val_blocks, cfg.eval, s.precision),
                **masked_lm_metrics(masked, s.val_blocks, s.tokenizer, cfg.eval, cfg.masking, s.precision)}
    terms = [_term("clm", causal, share, s.train_blocks, CausalBatcher(), n_causal, tc.seed + 7919, s),
             _term("mntp", masked, 1.0 - share, s.train_blocks, batcher, n_masked, tc.seed, s)]
    hook = EvaluateHook(evaluate, lambda: {"masking": measure_masking(batcher, s.train_blocks)},
                        lambda step, total: _rate_field(cfg, step, total))
    return Parts(terms, [hook], evaluate)


# train.objective -> its parts
OBJECTIVES: dict[str, Callable[[Setting], Parts]] = {
    "mlm": mlm_parts, "clm": clm_parts, "seq2seq": seq2seq_parts, "hybrid": hybrid_parts,
}


def loop_config(cfg: RunConfig, lr: float):
    """The train section the loop runs with: the resolved learning rate (the saved config keeps lr: 0)."""
    return dataclasses.replace(cfg.train, lr=lr)
