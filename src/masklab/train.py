"""The one training loop: accelerate for devices, processes and mixed precision; everything else in sight.

Phases per optimizer step: fetch micro-batches -> forward/backward (no gradient sync until the
last micro-batch) -> clip -> step -> schedule -> log / evaluate / checkpoint. A batch depends only
on (seed, index) and the schedule only on progress, so a resumed run continues exactly where the
killed one stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from masklab.checkpoint import find_checkpoint, load_trainer_state, load_weights, save_checkpoint
from masklab.config import RunConfig
from masklab.data.batches import TrainBatches, collate_single, init_worker
from masklab.data.shards import PackedBlocks
from masklab.errors import TrainingDiverged, UserError
from masklab.evaluate import autocast_context, masked_lm_metrics
from masklab.masking import MLMBatcher, measure_masking
from masklab.objectives import mlm_objective
from masklab.runtime import tune_allocator


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def bf16_capable() -> bool:
    """The hardware has bf16 arithmetic at all (benchmarks measure both precisions where it does)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_preferred() -> bool:
    """Whether `precision: auto` picks bf16: only where bf16 matmuls beat fp32.

    That is Ampere+ GPUs and CPUs with AMX tiles. AVX512-BF16 alone is not enough: on such a CPU
    (no AMX) oneDNN's bf16 matmul ran at 0.6x the fp32 one and the small preset trained 40% slower.
    """
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return "amx_bf16" in _cpu_flags()


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if bf16_preferred() else "fp32"
    return precision


def lr_factor(progress: float, warmup_fraction: float, schedule: str) -> float:
    """Linear warm-up to 1, then linear / cosine (Loshchilov & Hutter 2017) / constant decay over progress in [0, 1]."""
    if warmup_fraction > 0 and progress < warmup_fraction:
        return progress / warmup_fraction
    if schedule == "constant":
        return 1.0
    rest = min(1.0, (progress - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * rest))
    return 1.0 - rest


def decays(name: str, p: torch.Tensor) -> bool:
    """Weight decay on matrices only: decaying biases and LayerNorm gains just fights the loss."""
    return p.ndim >= 2 and "norm" not in name.lower()


def param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups: list[dict], lr: float, **options) -> torch.optim.Optimizer:
    try:  # fused AdamW: one kernel for all parameters (CPU support since torch 2.4)
        return torch.optim.AdamW(groups, lr=lr, eps=1e-6, fused=True, **options)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, eps=1e-6, foreach=True, **options)


def make_optimizer(model, cfg) -> torch.optim.Optimizer:
    return adamw(param_groups(model, cfg.weight_decay), cfg.lr, betas=(0.9, cfg.beta2))


class MetricsLog:
    """metrics.jsonl: one JSON object per line, flushed at once so a killed run keeps its log."""

    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None = None):
        self.path = path
        self.enabled = enabled
        if enabled and keep_until_step is not None and path.exists():  # drop lines a killed run wrote after its checkpoint
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= keep_until_step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        elif enabled and keep_until_step is None:
            path.write_text("", encoding="utf-8")

    def write(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


@dataclass
class TrainResult:
    steps: int
    train_tokens: int
    train_seconds: float  # time inside training steps (no evaluation or checkpointing), across resumes
    tokens_per_second: float
    final_loss: float
    stopped_by: str
    precision: str


def train_mlm(model, tokenizer, train_blocks: PackedBlocks, val_blocks: PackedBlocks, cfg: RunConfig, run_dir: Path,
              resume: bool = False, halt_at_step: int | None = None, show_progress: bool = True) -> TrainResult:
    """Pretrain `model` with the MLM objective. `halt_at_step` stops early with a checkpoint, as if killed."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    tune_allocator()
    tc = cfg.train
    precision = resolve_precision(tc.precision)
    # Precision is our own autocast (below), not accelerate's: its state is a process-wide singleton,
    # and one process may train several models at different precisions (studies, benchmarks).
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    world = accelerator.num_processes
    tokens_per_step = tc.batch_size * tc.grad_accum * world * train_blocks.seq_length
    total_steps = tc.max_steps
    if tc.max_tokens:
        total_steps = min(total_steps, math.ceil(tc.max_tokens / tokens_per_step))

    # Set-up: objective, optimizer, and (on --resume) the state of the last checkpoint.
    objective = mlm_objective(model, tokenizer, cfg)
    optimizer = make_optimizer(model, tc)
    state = {"step": 0, "tokens": 0, "elapsed": 0.0, "compute_seconds": 0.0}
    checkpoint = find_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise UserError(f"--resume: {run_dir} has no checkpoint to resume from; start without --resume")
    if checkpoint is not None:
        saved = load_trainer_state(checkpoint)
        load_weights(model, checkpoint)
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        state = {k: saved[k] for k in state}
    if tc.compile:
        objective = torch.compile(objective)
    objective, optimizer = accelerator.prepare(objective, optimizer)
    log = MetricsLog(run_dir / "metrics.jsonl", accelerator.is_main_process, state["step"] if checkpoint else None)

    # Data: micro-batch m of this process is global batch m * world + rank.
    batcher = MLMBatcher(cfg.masking, tokenizer, seed=tc.seed)
    start_micro = state["step"] * tc.grad_accum
    n_micro = total_steps * tc.grad_accum
    # The main process builds any cached per-token features (POS tags, phrase units) first.
    with accelerator.main_process_first():
        dataset = TrainBatches(train_blocks, batcher, tc.batch_size, tc.seed, length=n_micro * world,
                               show_progress=show_progress and accelerator.is_main_process)
    if checkpoint is None and log.enabled:  # what the masker really does on this corpus, measured once per run
        log.write({"step": 0, "masking": measure_masking(batcher, train_blocks)})
    sampler = range(start_micro * world + accelerator.process_index, n_micro * world, world)
    on_gpu = accelerator.device.type == "cuda"
    if on_gpu and precision == "fp32":  # TF32 tensor cores: fp32 storage, ~8x matmul throughput on Ampere+
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    loader = DataLoader(dataset, batch_size=None, sampler=sampler, collate_fn=collate_single,
                        num_workers=tc.num_workers, worker_init_fn=init_worker if tc.num_workers else None,
                        pin_memory=on_gpu, prefetch_factor=4 if tc.num_workers else None)
    batches = iter(loader)
    unigram = None

    def save(step_state):
        if accelerator.is_main_process:
            save_checkpoint(run_dir, accelerator.unwrap_model(objective).model, tokenizer, optimizer, step_state)
        accelerator.wait_for_everyone()

    def evaluate(step: int) -> None:
        metrics = masked_lm_metrics(accelerator.unwrap_model(objective), val_blocks, tokenizer, cfg.eval, cfg.masking, precision, unigram)
        log.write({"step": step, "tokens": state["tokens"], "elapsed": state["elapsed"],
                   "compute_seconds": state["compute_seconds"], **{f"val_{k}": v for k, v in metrics.items()}})

    bar = tqdm(total=total_steps, initial=state["step"], desc="pretraining", unit="step",
               disable=not (show_progress and accelerator.is_main_process))
    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
    start_clock = time.perf_counter() - state["elapsed"]
    stopped_by, last_loss = "max_steps", float("nan")
    step = state["step"]
    try:
        while step < total_steps:
            # 1. Forward and backward over the micro-batches; gradients sync only on the last one.
            step_start = time.perf_counter()
            step_loss = 0.0
            for k in range(tc.grad_accum):
                batch = next(batches)
                sync = contextlib.nullcontext() if k == tc.grad_accum - 1 else accelerator.no_sync(objective)
                with sync, autocast_context(precision, accelerator.device.type):
                    loss = objective(batch["input_ids"].to(accelerator.device, non_blocking=True),
                                     batch["labels"].to(accelerator.device, non_blocking=True))["loss"]
                accelerator.backward(loss / tc.grad_accum)
                step_loss += loss.item() / tc.grad_accum
            if world > 1:  # the mean over processes: logged, and every process sees the same NaN and stops together
                step_loss = accelerator.reduce(torch.tensor(step_loss, device=accelerator.device), reduction="mean").item()
            if not math.isfinite(step_loss):
                kept = find_checkpoint(run_dir)
                raise TrainingDiverged(
                    f"the loss became {step_loss} at step {step + 1}; stopped. "
                    + (f"The last good checkpoint ({kept}) is kept. " if kept else "No checkpoint was written yet. ")
                    + "Lower train.lr, raise train.warmup_fraction, or use train.precision=fp32")
            # 2. Schedule, clip, step. The learning rate follows progress: steps, or time if budgeted.
            progress = step / total_steps
            if tc.max_minutes:
                progress = max(progress, (time.perf_counter() - start_clock) / (60 * tc.max_minutes))
            for group in optimizer.param_groups:
                group["lr"] = tc.lr * lr_factor(progress, tc.warmup_fraction, tc.schedule)
            if tc.clip_norm:
                accelerator.clip_grad_norm_(objective.parameters(), tc.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["step"] = step
            state["tokens"] += tokens_per_step
            state["compute_seconds"] += time.perf_counter() - step_start
            state["elapsed"] = time.perf_counter() - start_clock
            # 3. Log, evaluate, checkpoint.
            window_loss += step_loss
            window_steps += 1
            last_loss = step_loss
            if step % tc.log_every == 0 or step == total_steps:
                seconds = time.perf_counter() - window_start
                tps = window_steps * tokens_per_step / max(seconds, 1e-9)
                log.write({"step": step, "tokens": state["tokens"], "loss": window_loss / window_steps,
                           "lr": optimizer.param_groups[0]["lr"], "mask_rate": cfg.masking.rate_at(step / total_steps),
                           "tokens_per_second": tps, "elapsed": state["elapsed"]})
                bar.set_postfix(loss=f"{window_loss / window_steps:.3f}", tok_s=f"{tps:,.0f}")
                window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
            bar.update(1)
            if tc.eval_every and step % tc.eval_every == 0 and step < total_steps:
                evaluate(step)
            out_of_time = tc.max_minutes and state["elapsed"] >= 60 * tc.max_minutes
            halted = halt_at_step is not None and step >= halt_at_step
            if (tc.save_every and step % tc.save_every == 0) or step == total_steps or out_of_time or halted:
                save(dict(state))
            if out_of_time or halted:
                stopped_by = "max_minutes" if out_of_time else "halt"
                break
        if step >= total_steps and tc.max_tokens and total_steps < tc.max_steps:
            stopped_by = "max_tokens"
    except KeyboardInterrupt:
        save(dict(state))
        raise UserError(f"interrupted at step {step}; a checkpoint was saved in {run_dir}; continue with --resume") from None
    finally:
        bar.close()
    return TrainResult(steps=step, train_tokens=state["tokens"], train_seconds=state["compute_seconds"],
                       tokens_per_second=state["tokens"] / max(state["compute_seconds"], 1e-9), final_loss=last_loss,
                       stopped_by=stopped_by, precision=precision)
