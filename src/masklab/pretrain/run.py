"""`masklab pretrain`: corpus -> tokenizer -> shards -> model -> the one loop -> evaluation -> run directory,
for every objective (train.objective; each is one record in objective_records.py and one module in objectives/).

A run directory holds `config.yaml` (resolved), `metrics.jsonl`, `summary.json` and `checkpoint/`
(model + tokenizer in Hugging Face format, plus trainer state for --resume).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
from accelerate import PartialState

from masklab.config import RunConfig, build_config, deep_merge, load_config, read_yaml_mapping, save_config
from masklab.data.pipeline import prepare_data
from masklab.data.prepare import cache_root, sample_lines
from masklab.data.shards import PackedBlocks, packed_blocks
from masklab.data.tokenizer import causal_tokenizer
from masklab.errors import UserError
from masklab.fsutil import save_pretrained_directory, write_json_atomic
from masklab.models import build_model, count_parameters
from masklab.models.build import pretraining_lr
from masklab.models.checkpoint import find_checkpoint
from masklab.models.matching import parameter_counts
from masklab.objectives import behaviour, record
from masklab.objectives.recipe import Setting
from masklab.preflight import packing_facts, preflight
from masklab.preflight import report as preflight_report
from masklab.runtime import run_precision
from masklab.train import make_optimizer, train


def resolve_run_config(config_path: str | None, overrides, out: Path, resume: bool) -> RunConfig:
    """The config for a run: on --resume, the run's own saved config, under the config file's values where one is
    given (a key the file leaves unset keeps what the run trained with, not a default that has moved since)."""
    saved = out / "config.yaml"
    if resume and config_path is None:
        if not saved.exists():
            raise UserError(f"--resume: {out} has no config.yaml; is it a masklab run directory?")
        return load_config(saved, overrides)
    if resume and saved.exists():
        return build_config(deep_merge(read_yaml_mapping(saved), read_yaml_mapping(config_path)), overrides)
    return load_config(config_path, overrides)


def check_resumable(out: Path, cfg: RunConfig) -> None:
    """--resume of a run that already spent the budget it is resumed with would only repeat its
    evaluation: say so instead (a larger train.max_steps / max_tokens continues it)."""
    path = out / "summary.json"
    if not path.exists():
        return
    done = json.loads(path.read_text(encoding="utf-8"))
    spent = {
        "max_steps": done.get("steps", 0) >= cfg.train.max_steps,
        "max_tokens": cfg.train.max_tokens and done.get("train_tokens", 0) >= cfg.train.max_tokens,
    }
    if spent.get(done.get("stopped_by")):
        raise UserError(
            f"{out} holds a finished run ({done['steps']} steps, stopped by {done['stopped_by']}); nothing to "
            "resume. Raise train.max_steps to train on, or start a new run from it with "
            f"--set model.init={out} --out OTHER_DIR"
        )


def train_pretraining(
    model,
    tokenizer,
    train_blocks: PackedBlocks,
    val_blocks: PackedBlocks,
    cfg: RunConfig,
    out: Path,
    precision: str,
    resume: bool = False,
    halt_at_step: int | None = None,
    show_progress: bool = True,
    unigram_counts=None,
    on_eval=None,
):
    """The one loop on `train.objective`'s terms (packed blocks masked / shifted / corrupted afresh per
    (seed, block, epoch)); returns (TrainResult, the objective's final figures as a function)."""
    lr = pretraining_lr(cfg.train.lr, model)
    setting = Setting(model, tokenizer, train_blocks, val_blocks, cfg, precision, unigram_counts, show_progress)
    parts = behaviour(cfg.train.objective).parts(setting)
    # a text-generation checkpoint is saved with a BOS-only template
    saved_tokenizer = causal_tokenizer(tokenizer) if record(cfg.train.objective).causal_checkpoint else tokenizer
    tc = dataclasses.replace(cfg.train, lr=lr)  # the loop runs at the resolved rate; the saved config keeps lr: 0
    trained = torch.nn.ModuleList([model, *parts.companions.values()]) if parts.companions else model
    result = train(
        model,
        saved_tokenizer,
        parts.terms,
        make_optimizer(trained, tc),
        tc,
        out,
        precision,
        hooks=parts.hooks,
        resume=resume,
        halt_at_step=halt_at_step,
        show_progress=show_progress,
        desc=f"pretraining ({cfg.train.objective})",
        on_eval=on_eval,
    )
    if PartialState().is_main_process:
        for name, companion in parts.companions.items():
            save_pretrained_directory(out / name, companion, saved_tokenizer)
    return result, parts.final


def pretrain(
    cfg: RunConfig,
    out: Path,
    resume: bool = False,
    halt_at_step: int | None = None,
    show_progress: bool = True,
    on_eval=None,
) -> dict:
    """Run a whole pretraining job into `out`; return the summary (also written to summary.json).
    `on_eval(step, metrics)` sees every validation evaluation (see train.train)."""

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
    objective = cfg.train.objective
    with state.main_process_first():
        data = prepare_data(
            cfg.data, cfg.tokenizer, show_progress=show_progress and state.is_main_process, objective=objective
        )
    tokenizer = data.tokenizer
    train_blocks = packed_blocks(data.shards, "train", cfg.data.seq_length, tokenizer.cls_token_id)
    val_blocks = packed_blocks(data.shards, "val", cfg.data.seq_length, tokenizer.cls_token_id)

    # Model: seeded so every process (and every rerun) starts from the same weights.
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, tokenizer, cfg.data.seq_length, objective)
    precision, precision_info = run_precision(
        cfg.train.precision, model, cfg.train.batch_size * cfg.data.seq_length, cache_root(cfg.data)
    )

    facts = preflight_report(
        preflight(
            tokenizer,
            sample_lines(data.corpus),
            model,
            precision,
            cfg.masking.strategy if record(objective).masks_tokens else None,
            packing_facts(train_blocks, tokenizer.sep_token_id, cfg.data.block_diagonal),
        ),
        show_progress and state.is_main_process,
    )

    result, final = train_pretraining(
        model,
        tokenizer,
        train_blocks,
        val_blocks,
        cfg,
        out,
        precision,
        resume=resume,
        halt_at_step=halt_at_step,
        show_progress=show_progress and state.is_main_process,
        unigram_counts=data.shards.unigram_counts(),
        on_eval=on_eval,
    )
    metrics = final()  # on the validation split: fixed masks / corruptions, the same for every model
    summary = {
        "objective": objective,
        "architecture": model.config.model_type,
        **metrics,
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
        "non_embedding_parameters": parameter_counts(model)["non_embedding"],
        "processes": state.num_processes,
        "corpus": {**data.corpus.stats, **{k: data.shards.meta[k] for k in ("train_tokens", "val_tokens")}},
        "checkpoint": str(out / "checkpoint"),
        "preflight": facts,
    }
    if state.is_main_process:
        write_json_atomic(out / "summary.json", summary)
        with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {"step": result.steps, "tokens": result.train_tokens, **{f"val_{k}": v for k, v in metrics.items()}}
                )
                + "\n"
            )
    return {**summary, "is_main_process": state.is_main_process}
