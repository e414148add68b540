"""Loading a finished checkpoint and evaluating it on a corpus (the `evaluate` / `fill-mask` commands)."""

from __future__ import annotations

from pathlib import Path

from masklab.config import load_config
from masklab.data.pipeline import prepare_data
from masklab.data.shards import packed_blocks
from masklab.errors import UserError
from masklab.evaluate import masked_lm_metrics, pseudo_perplexity
from masklab.models import resolve_checkpoint
from masklab.objectives import mlm_objective
from masklab.train import resolve_precision


def load_checkpoint(path: str | Path):
    """(model, tokenizer) from a masklab run directory or any Hugging Face masked-LM directory."""
    from transformers import AutoModelForMaskedLM

    from masklab.data.tokenizer import load_tokenizer

    directory = resolve_checkpoint(path)
    tokenizer = load_tokenizer(directory)
    try:
        model = AutoModelForMaskedLM.from_pretrained(str(directory))
    except Exception as exc:  # wrong architecture or damaged weights
        raise UserError(f"could not load a masked-LM from {directory} ({type(exc).__name__}); is it a masked-LM checkpoint?") from None
    return model.eval(), tokenizer


def evaluate_checkpoint(path: str | Path, corpus: str | None = None, overrides=(), show_progress: bool = True) -> dict:
    """Evaluate on the run's validation split, or on all of `corpus` when given."""
    path = Path(path)
    run_config = path / "config.yaml"
    # with `corpus`: the run's own settings (masking, attention, eval) on all of another text
    other_text = [f"data.corpus={corpus}", "data.val_fraction=0"] if corpus is not None else []
    cfg = load_config(run_config if run_config.exists() else None, [*overrides, *other_text])
    model, tokenizer = load_checkpoint(path)
    data = prepare_data(cfg.data, cfg.tokenizer, tokenizer_path=str(resolve_checkpoint(path)), show_progress=show_progress)
    split = "train" if corpus is not None else "val"
    blocks = packed_blocks(data.shards, split, cfg.data.seq_length, tokenizer.cls_token_id)
    precision = resolve_precision(cfg.train.precision)
    metrics = masked_lm_metrics(mlm_objective(model, tokenizer, cfg), blocks, tokenizer, cfg.eval, cfg.masking, precision,
                                data.shards.unigram_counts())
    metrics["pseudo_perplexity"] = pseudo_perplexity(model, tokenizer, blocks, cfg.eval.pppl_sequences,
                                                     cfg.eval.pppl_max_length, precision)
    metrics["evaluated_blocks"] = min(len(blocks), cfg.eval.max_blocks or len(blocks))
    return metrics
