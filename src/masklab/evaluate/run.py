"""Evaluating a finished masked-LM checkpoint on a corpus (the `evaluate` command)."""

from __future__ import annotations

from pathlib import Path

from masklab.config import load_config
from masklab.data.pipeline import prepare_data
from masklab.data.prepare import cache_root
from masklab.data.shards import packed_blocks
from masklab.evaluate.masked import masked_lm_metrics, pseudo_perplexity
from masklab.models.checkpoint import load_masked_lm, resolve_checkpoint
from masklab.objectives.mlm import mlm_objective
from masklab.runtime import choose_precision, model_shape


def evaluate_checkpoint(path: str | Path, corpus: str | None = None, overrides=(), show_progress: bool = True) -> dict:
    """Evaluate on the run's validation split, or on all of `corpus` when given."""
    path = Path(path)
    run_config = path / "config.yaml"
    # with `corpus`: the run's own settings (masking, attention, eval) on all of another text
    other_text = [f"data.corpus={corpus}", "data.val_fraction=0"] if corpus is not None else []
    cfg = load_config(run_config if run_config.exists() else None, [*overrides, *other_text])
    model, tokenizer = load_masked_lm(path)
    data = prepare_data(cfg.data, cfg.tokenizer, tokenizer_path=str(resolve_checkpoint(path)), show_progress=show_progress)
    split = "train" if corpus is not None else "val"
    blocks = packed_blocks(data.shards, split, cfg.data.seq_length, tokenizer.cls_token_id)
    precision, _ = choose_precision(cfg.train.precision, *model_shape(model), cfg.eval.batch_size * cfg.data.seq_length,
                                    cache_root(cfg.data))
    metrics = masked_lm_metrics(mlm_objective(model, tokenizer, cfg), blocks, tokenizer, cfg.eval, cfg.masking, precision,
                                data.shards.unigram_counts())
    metrics["pseudo_perplexity"] = pseudo_perplexity(model, tokenizer, blocks, cfg.eval.pppl_sequences,
                                                     cfg.eval.pppl_max_length, precision)
    metrics["evaluated_blocks"] = min(len(blocks), cfg.eval.max_blocks or len(blocks))
    return metrics
