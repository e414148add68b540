"""`masklab pretrain`: corpus -> tokenizer -> shards -> model -> the one loop -> evaluation -> run directory.

A run directory holds `config.yaml` (resolved), `metrics.jsonl`, `summary.json` and `checkpoint/`
(model + tokenizer in Hugging Face format, plus trainer state for --resume).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from masklab.config import RunConfig, load_config, save_config
from masklab.data.batches import TrainBatches
from masklab.data.pipeline import prepare_data
from masklab.data.prepare import cache_root
from masklab.data.shards import PackedBlocks, packed_blocks
from masklab.errors import UserError
from masklab.evaluate.masked import masked_lm_metrics, pseudo_perplexity
from masklab.masking import MLMBatcher, measure_masking
from masklab.models import build_model, count_parameters
from masklab.models.build import pretraining_lr
from masklab.models.checkpoint import find_checkpoint
from masklab.objectives.mlm import mlm_objective
from masklab.runtime import choose_precision, model_shape
from masklab.train import Hook, Term, make_optimizer, train


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


def check_resumable(out: Path, cfg: RunConfig) -> None:
    """--resume of a run that already spent the budget it is resumed with would only repeat its
    evaluation: say so instead (a larger train.max_steps / max_tokens continues it)."""
    path = out / "summary.json"
    if not path.exists():
        return
    done = json.loads(path.read_text(encoding="utf-8"))
    spent = {"max_steps": done.get("steps", 0) >= cfg.train.max_steps,
             "max_tokens": cfg.train.max_tokens and done.get("train_tokens", 0) >= cfg.train.max_tokens}
    if spent.get(done.get("stopped_by")):
        raise UserError(f"{out} holds a finished run ({done['steps']} steps, stopped by {done['stopped_by']}); nothing to "
                        "resume. Raise train.max_steps to train on, or start a new run from it with "
                        f"--set model.init={out} --out OTHER_DIR")


class MaskedLMHooks(Hook):
    """Pretraining's hooks: the masker's measured statistics at the start, its rate at each log line,
    masked accuracy / loss on fixed validation masks at each evaluation."""

    def __init__(self, objective, batcher: MLMBatcher, train_blocks: PackedBlocks, val_blocks: PackedBlocks,
                 tokenizer, cfg: RunConfig, precision: str):
        self.objective, self.batcher, self.train_blocks, self.val_blocks = objective, batcher, train_blocks, val_blocks
        self.tokenizer, self.cfg, self.precision = tokenizer, cfg, precision

    def at_start(self) -> dict:
        return {"masking": measure_masking(self.batcher, self.train_blocks)}

    def on_log(self, step: int, total_steps: int) -> dict:
        return {"mask_rate": self.cfg.masking.rate_at(step / total_steps)}

    def evaluate(self, step: int) -> dict:
        return masked_lm_metrics(self.objective, self.val_blocks, self.tokenizer, self.cfg.eval, self.cfg.masking,
                                 self.precision)


def train_masked_lm(model, tokenizer, train_blocks: PackedBlocks, val_blocks: PackedBlocks, cfg: RunConfig, out: Path,
                    precision: str, resume: bool = False, halt_at_step: int | None = None, show_progress: bool = True):
    """The one loop on one masked-LM term: packed blocks masked afresh per (seed, block, epoch)."""
    tc = dataclasses.replace(cfg.train, lr=pretraining_lr(cfg.train.lr, model))  # the saved config keeps lr: 0
    objective = mlm_objective(model, tokenizer, cfg)
    batcher = MLMBatcher(cfg.masking, tokenizer, seed=tc.seed)
    term = Term("mlm", objective, 1.0,
                lambda n: TrainBatches(train_blocks, batcher, tc.batch_size, tc.seed, n, show_progress),
                tc.batch_size * train_blocks.seq_length)
    hooks = [MaskedLMHooks(objective, batcher, train_blocks, val_blocks, tokenizer, cfg, precision)]
    return train(model, tokenizer, [term], make_optimizer(model, tc), tc, out, precision, hooks=hooks, resume=resume,
                 halt_at_step=halt_at_step, show_progress=show_progress, desc="pretraining")


def pretrain(cfg: RunConfig, out: Path, resume: bool = False, halt_at_step: int | None = None,
             show_progress: bool = True) -> dict:
    """Run a whole pretraining job into `out`; return the summary (also written to summary.json)."""
    from accelerate import PartialState

    wall_start = time.perf_counter()
    # cpu=True on machines without CUDA: that is what lets torchrun / `accelerate launch` processes
    # join a gloo process group (MULTI_CPU) instead of each training alone.
    state = PartialState(cpu=not torch.cuda.is_available())
    out = Path(out)
    if resume:
        check_resumable(out, cfg)
    elif find_checkpoint(out) is not None:
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
    precision, precision_info = choose_precision(cfg.train.precision, *model_shape(model),
                                                 cfg.train.batch_size * cfg.data.seq_length, cache_root(cfg.data))

    result = train_masked_lm(model, tokenizer, train_blocks, val_blocks, cfg, out, precision, resume=resume,
                             halt_at_step=halt_at_step, show_progress=show_progress and state.is_main_process)
    objective = mlm_objective(model, tokenizer, cfg)

    # Final evaluation on fixed masks, with the unigram baseline, and pseudo-perplexity on a sample.
    metrics = masked_lm_metrics(objective, val_blocks, tokenizer, cfg.eval, cfg.masking, precision,
                                data.shards.unigram_counts())
    pppl = pseudo_perplexity(model, tokenizer, val_blocks, cfg.eval.pppl_sequences, cfg.eval.pppl_max_length, precision)
    summary = {
        "objective": "mlm",
        **metrics,
        "pseudo_perplexity": pppl,
        "train_tokens": result.train_tokens,
        "tokens_per_second": result.tokens_per_second,
        "train_seconds": result.train_seconds,
        "wall_seconds": time.perf_counter() - wall_start,
        "steps": result.steps,
        "stopped_by": result.stopped_by,
        "final_train_loss": result.final_loss,
        "lr": pretraining_lr(cfg.train.lr, model),
        "precision": result.precision,
        "precision_choice": precision_info,
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
