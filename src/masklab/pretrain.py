"""`masklab pretrain`: corpus -> tokenizer -> shards -> model -> training -> evaluation -> run directory.

A run directory holds `config.yaml` (resolved), `metrics.jsonl`, `summary.json` and `checkpoint/`
(model + tokenizer in Hugging Face format, plus trainer state for --resume).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from masklab.checkpoint import find_checkpoint
from masklab.config import RunConfig, load_config, save_config
from masklab.data.pipeline import prepare_data
from masklab.data.shards import packed_blocks
from masklab.errors import UserError
from masklab.evaluate import masked_lm_metrics, pseudo_perplexity
from masklab.models import build_model, count_parameters
from masklab.objectives import mlm_objective
from masklab.train import train_mlm


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def resolve_run_config(config_path: str | None, overrides, out: Path, resume: bool) -> RunConfig:
    """The config for a run: on --resume without a config file, the run's own saved config."""
    if resume and config_path is None:
        if not (out / "config.yaml").exists():
            raise UserError(f"--resume: {out} has no config.yaml; is it a masklab run directory?")
        return load_config(out / "config.yaml", overrides)
    return load_config(config_path, overrides)


def pretrain(cfg: RunConfig, out: Path, resume: bool = False, halt_at_step: int | None = None,
             show_progress: bool = True) -> dict:
    """Run a whole pretraining job into `out`; return the summary (also written to summary.json)."""
    from accelerate import PartialState

    wall_start = time.perf_counter()
    # cpu=True on machines without CUDA: that is what lets torchrun / `accelerate launch` processes
    # join a gloo process group (MULTI_CPU) instead of each training alone.
    state = PartialState(cpu=not torch.cuda.is_available())
    out = Path(out)
    if not resume and find_checkpoint(out) is not None:
        raise UserError(f"{out} already holds a run; continue it with --resume or choose another --out")
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")

    # Data: the main process prepares (or finds cached) corpus, tokenizer and shards first.
    with state.main_process_first():
        data = prepare_data(cfg.data, cfg.tokenizer, show_progress=show_progress and state.is_main_process)
    tokenizer = data.tokenizer
    train_blocks = packed_blocks(data.shards, "train", cfg.data.seq_length, tokenizer.cls_token_id)
    val_blocks = packed_blocks(data.shards, "val", cfg.data.seq_length, tokenizer.cls_token_id)

    # Model: seeded so every process (and every rerun) starts from the same weights.
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, tokenizer, cfg.data.seq_length)
    result = train_mlm(model, tokenizer, train_blocks, val_blocks, cfg, out, resume=resume,
                       halt_at_step=halt_at_step, show_progress=show_progress)

    # Final evaluation on fixed masks, with the unigram baseline, and pseudo-perplexity on a sample.
    metrics = masked_lm_metrics(mlm_objective(model, tokenizer, cfg), val_blocks, tokenizer, cfg.eval, cfg.masking,
                                result.precision, data.shards.unigram_counts())
    pppl = pseudo_perplexity(model, tokenizer, val_blocks, cfg.eval.pppl_sequences, cfg.eval.pppl_max_length, result.precision)
    summary = {
        **metrics,
        "pseudo_perplexity": pppl,
        "train_tokens": result.train_tokens,
        "tokens_per_second": result.tokens_per_second,
        "train_seconds": result.train_seconds,
        "wall_seconds": time.perf_counter() - wall_start,
        "steps": result.steps,
        "stopped_by": result.stopped_by,
        "final_train_loss": result.final_loss,
        "precision": result.precision,
        "parameters": count_parameters(model),
        "processes": state.num_processes,
        "corpus": {**data.corpus.stats, **{k: data.shards.meta[k] for k in ("train_tokens", "val_tokens")}},
        "checkpoint": str(out / "checkpoint"),
    }
    if state.is_main_process:
        write_json_atomic(out / "summary.json", summary)
        with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": result.steps, "tokens": result.train_tokens,
                                **{f"val_{k}": v for k, v in metrics.items()}, "val_pseudo_perplexity": pppl}) + "\n")
    return {**summary, "is_main_process": state.is_main_process}
