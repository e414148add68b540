"""The one training loop. Pretraining, fine-tuning, rehearsal and multi-task runs all go through `train()`.

A run trains one model on a weighted list of objectives (`Term`: an objective module and its batch
source) plus regularizers, and the loss is written in plain sight:

    loss = Σ term.weight · term.objective(batch) + Σ regularizer.penalty(model)

A regularizer may also scale the optimizer's step (`step_scale(step, total)`) and act on the weights
after it (`after_step(model, lr, step, total)`): RecAdam's annealed pull, decoupled from Adam.

What differs between kinds of runs (which layer groups train at a step, what is validated, which
weights are kept as the best) reaches the loop through hooks whose methods return values; the loop
never asks which kind of run it is. accelerate provides devices and processes; precision is our own
autocast, because accelerate's state is a process-wide singleton and one process may train several
models at different precisions (studies, benchmarks).

Phases per optimizer step: hooks -> micro-batches forward/backward (gradients sync only on the
last) -> clip -> schedule -> step -> log / evaluate / checkpoint. Batch m of every source is a pure
function of (seed, m) and the schedule depends only on progress, so a resumed run continues
exactly where the killed one stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from masklab.config import TrainConfig
from masklab.errors import TrainingDiverged, UserError
from masklab.masking.batches import collate_single, init_worker
from masklab.models.checkpoint import find_checkpoint, load_trainer_state, load_weights, save_checkpoint
from masklab.runtime import autocast_context, tune_allocator


@dataclass
class Term:
    """One objective of a run: its loss module, weight, and batch source."""

    name: str  # logged as loss_NAME when a run has several terms
    objective: nn.Module  # forward(**batch) -> {"loss": scalar tensor, ...}
    weight: float
    batches: Callable[[int], Dataset]  # total micro-batches (all processes) -> dataset whose item m is micro-batch m
    tokens_per_batch: float  # nominal tokens of one micro-batch: token budgets and the token count


class Hook:
    """Where a kind of run changes the loop. Every method is optional and returns what the loop uses."""

    def at_start(self) -> dict:
        """Fields logged once, at step 0 of a fresh run (e.g. measured masking statistics)."""
        return {}

    def before_step(self, step: int, total_steps: int) -> dict:
        """Runs before each optimizer step (may change what trains); a non-empty result is logged at `step`."""
        return {}

    def on_log(self, step: int, total_steps: int) -> dict:
        """At log steps, after backward and before clipping: fields for the log line (e.g. gradient norms)."""
        return {}

    def evaluate(self, step: int) -> dict:
        """At evaluation steps: metrics, logged with a val_ prefix."""
        return {}

    def state_dict(self) -> dict:
        """What the hook must keep across --resume (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ObjectiveSet(nn.Module):
    """All terms' objectives as one module, so one forward feeds one backward (what DDP needs)."""

    def __init__(self, terms: list[Term]):
        super().__init__()
        self.parts = nn.ModuleDict({t.name: t.objective for t in terms})

    def forward(self, batches: dict[str, dict]) -> dict[str, dict]:
        return {name: self.parts[name](**batch) for name, batch in batches.items()}


def lr_factor(progress: float, warmup_fraction: float, schedule: str, decay_fraction: float = 0.2) -> float:
    """Linear warm-up to 1, then linear / cosine (Loshchilov & Hutter 2017) / constant decay over progress in [0, 1],
    or wsd: the peak held until the last `decay_fraction` of the run, then a linear fall to 0."""
    if warmup_fraction > 0 and progress < warmup_fraction:
        return progress / warmup_fraction
    if schedule == "constant":
        return 1.0
    if schedule == "wsd":
        return min(1.0, max(0.0, (1.0 - progress) / decay_fraction))
    rest = min(1.0, (progress - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * rest))
    return 1.0 - rest


def piece_length(progress: float, seq_length: int, warmup_fraction: float, start: int) -> int:
    """The sequence length at `progress` under sequence-length warm-up: `start`, doubling in equal stages over the
    first `warmup_fraction` of the run, then the full `seq_length`."""
    if warmup_fraction <= 0 or progress >= warmup_fraction or start >= seq_length:
        return seq_length
    stages = int(math.log2(seq_length // start))  # start, 2*start, ... below seq_length
    return start * 2 ** int(stages * progress / warmup_fraction)


def cut_into_pieces(batch: dict[str, torch.Tensor], progress: float, tc: TrainConfig) -> dict[str, torch.Tensor]:
    """Under sequence-length warm-up, (B, T) token tensors as (B*T/L, L): the same tokens and labels in shorter
    sequences of the length `piece_length` gives at this progress."""
    if tc.seq_warmup_fraction <= 0:  # off: batches of every kind (cached features, seq2seq) pass as they are
        return batch
    rows, width = batch["input_ids"].shape
    length = piece_length(progress, width, tc.seq_warmup_fraction, tc.seq_warmup_start)
    if length == width:
        return batch
    if width % length or any(v.shape != (rows, width) for v in batch.values()):
        raise UserError(
            f"train.seq_warmup_fraction cuts each block of {width} tokens into pieces of "
            f"{tc.seq_warmup_start} x 2^k tokens: set data.seq_length to train.seq_warmup_start times a power of two, "
            "on an objective whose batches are all token-level (mlm, clm, hybrid, electra), or "
            "train.seq_warmup_fraction=0"
        )
    return {k: v.reshape(rows * (width // length), length) for k, v in batch.items()}


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
    """AdamW over param groups; a group's `lr_scale` (default 1) scales the scheduled rate (layer-wise decay)."""
    try:  # fused AdamW: one kernel for all parameters (CPU support since torch 2.4)
        return torch.optim.AdamW(groups, lr=lr, eps=1e-6, fused=True, **options)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, eps=1e-6, foreach=True, **options)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    return adamw(param_groups(model, cfg.weight_decay), cfg.lr, betas=(0.9, cfg.beta2))


class MetricsLog:
    """metrics.jsonl: one JSON object per line, flushed at once so a killed run keeps its log."""

    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None = None):
        self.path = path
        self.enabled = enabled
        if (
            enabled and keep_until_step is not None and path.exists()
        ):  # drop lines a killed run wrote after its checkpoint
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= keep_until_step
            ]
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
    total_steps: int  # the schedule's horizon (max_steps, or fewer under a token budget)
    train_tokens: int
    train_seconds: float  # time inside training steps (no evaluation or checkpointing), across resumes
    tokens_per_second: float
    final_loss: float
    stopped_by: str
    precision: str
    term_losses: dict[str, float] = field(default_factory=dict)  # last logged window, per term


def _extra_parameters(objectives: nn.Module, model) -> dict[str, torch.Tensor]:
    """Trainable state outside `model` (e.g. an MLM head beside a classifier): kept in the trainer state."""
    own = {v.data_ptr() for v in model.state_dict().values()}
    return {k: v for k, v in objectives.state_dict().items() if v.data_ptr() not in own}


def train(
    model,
    tokenizer,
    terms: list[Term],
    optimizer: torch.optim.Optimizer,
    tc: TrainConfig,
    run_dir: Path,
    precision: str,
    regularizers=(),
    hooks: list[Hook] = (),
    resume: bool = False,
    halt_at_step: int | None = None,
    show_progress: bool = True,
    desc: str = "training",
    eval_at_start: bool = False,
    eval_at_end: bool = False,
    on_eval=None,
) -> TrainResult:
    """Train `model` on `terms` for tc's budgets; checkpoints (model + tokenizer + trainer state) go to run_dir.

    The learning rate of every param group is tc.lr x lr_factor(progress) x the group's `lr_scale`.
    `halt_at_step` stops early with a checkpoint, as if killed. Hooks evaluate at every tc.eval_every
    steps, plus step 0 (`eval_at_start`) and the last step (`eval_at_end`) when asked; `on_eval(step,
    metrics)` sees each evaluation (a study's pruner stops an unpromising trial from there by raising).
    """

    tune_allocator()
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    world = accelerator.num_processes
    tokens_per_step = sum(t.tokens_per_batch for t in terms) * tc.grad_accum * world
    total_steps = tc.max_steps
    if tc.max_tokens:
        total_steps = min(total_steps, math.ceil(tc.max_tokens / tokens_per_step))

    # Set-up: one module over every objective, and (on --resume) the state of the last checkpoint.
    objectives = ObjectiveSet(terms)
    # "window": loss sums since the last log line, so a resumed run logs the same averages
    state = {
        "step": 0,
        "tokens": 0,
        "elapsed": 0.0,
        "compute_seconds": 0.0,
        "window": {"loss": 0.0, **{f"loss_{t.name}": 0.0 for t in terms}},
        "window_steps": 0,
    }
    checkpoint = find_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise UserError(f"--resume: {run_dir} has no checkpoint to resume from; start without --resume")
    if checkpoint is not None:
        saved = load_trainer_state(checkpoint)
        load_weights(model, checkpoint)
        objectives.load_state_dict(saved.get("extra_parameters", {}), strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        if "cuda_rng" in saved and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        for hook, hook_state in zip(hooks, saved.get("hooks", [])):
            hook.load_state_dict(hook_state)
        state = {k: saved.get(k, state[k]) for k in state}
    if tc.compile:
        objectives = torch.compile(objectives)
    objectives, optimizer = accelerator.prepare(objectives, optimizer)
    log = MetricsLog(run_dir / "metrics.jsonl", accelerator.is_main_process, state["step"] if checkpoint else None)

    # Data: micro-batch m of this process is global micro-batch m * world + rank of every source.
    n_micro = total_steps * tc.grad_accum
    with accelerator.main_process_first():  # the main process builds cached features (POS tags, phrases) first
        datasets = [t.batches(n_micro * world) for t in terms]
    sampler = range(state["step"] * tc.grad_accum * world + accelerator.process_index, n_micro * world, world)
    on_gpu = accelerator.device.type == "cuda"
    if on_gpu and precision == "fp32":  # TF32 tensor cores: fp32 storage, ~8x matmul throughput on Ampere+
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    streams = {
        t.name: iter(
            DataLoader(
                d,
                batch_size=None,
                sampler=sampler,
                collate_fn=collate_single,
                num_workers=tc.num_workers,
                worker_init_fn=init_worker if tc.num_workers else None,
                pin_memory=on_gpu,
                prefetch_factor=4 if tc.num_workers else None,
                generator=torch.Generator(),
            )
        )  # its own generator: the global stream stays the run's
        for t, d in zip(terms, datasets)
    }
    weights = {t.name: t.weight for t in terms}

    def save() -> None:
        if accelerator.is_main_process:
            extra = _extra_parameters(accelerator.unwrap_model(objectives), model)
            save_checkpoint(
                run_dir,
                model,
                tokenizer,
                optimizer,
                dict(state, hooks=[h.state_dict() for h in hooks], extra_parameters=extra),
            )
        accelerator.wait_for_everyone()

    def evaluate(step: int) -> None:
        metrics = {k: v for h in hooks for k, v in h.evaluate(step).items()}
        if metrics:
            log.write(
                {
                    "step": step,
                    "tokens": state["tokens"],
                    "elapsed": state["elapsed"],
                    "compute_seconds": state["compute_seconds"],
                    **{f"val_{k}": v for k, v in metrics.items()},
                }
            )
            if on_eval is not None:
                on_eval(step, metrics)

    if checkpoint is None:
        start_fields = {k: v for h in hooks for k, v in h.at_start().items()}
        if start_fields:
            log.write({"step": 0, **start_fields})
        if eval_at_start:
            evaluate(0)
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc=desc,
        unit="step",
        disable=not (show_progress and accelerator.is_main_process),
    )
    window, window_start = state["window"], time.perf_counter()
    start_clock = time.perf_counter() - state["elapsed"]

    def progress_at(step: int) -> float:  # the schedules' clock: steps, or elapsed time under a time budget
        done = step / total_steps
        return max(done, (time.perf_counter() - start_clock) / (60 * tc.max_minutes)) if tc.max_minutes else done

    stopped_by, last_loss, term_losses = "max_steps", float("nan"), {}
    step = resumed_at = state["step"]
    try:
        while step < total_steps:
            # 1. Hooks decide what trains now (frozen groups get no gradient at all).
            objectives.train()
            for hook in hooks:
                changed = hook.before_step(step, total_steps)
                if changed:
                    log.write({"step": step, **changed})
            # 2. Forward and backward over the micro-batches; gradients sync only on the last one.
            step_start = time.perf_counter()
            step_loss, step_terms = 0.0, dict.fromkeys(weights, 0.0)
            progress = progress_at(step)
            for k in range(tc.grad_accum):
                batches = {
                    name: cut_into_pieces(
                        {key: v.to(accelerator.device, non_blocking=True) for key, v in next(stream).items()},
                        progress,
                        tc,
                    )
                    for name, stream in streams.items()
                }
                sync = contextlib.nullcontext() if k == tc.grad_accum - 1 else accelerator.no_sync(objectives)
                with sync, autocast_context(precision, accelerator.device.type):
                    outputs = objectives(batches)
                    loss = sum(weights[name] * out["loss"] for name, out in outputs.items())
                    loss = loss + sum(r.penalty(model) for r in regularizers)
                accelerator.backward(loss / tc.grad_accum)
                step_loss += loss.item() / tc.grad_accum
                for name, out in outputs.items():
                    step_terms[name] += out["loss"].item() / tc.grad_accum
            if world > 1:  # the mean over processes: logged, and every process sees the same NaN and stops together
                step_loss = accelerator.reduce(
                    torch.tensor(step_loss, device=accelerator.device), reduction="mean"
                ).item()
            if not math.isfinite(step_loss):
                kept = find_checkpoint(run_dir)
                raise TrainingDiverged(
                    f"the loss became {step_loss} at step {step + 1}; stopped. "
                    + (f"The last good checkpoint ({kept}) is kept. " if kept else "No checkpoint was written yet. ")
                    + f"Lower the learning rate (now {tc.lr:g}), raise the warm-up, or train in fp32 precision"
                )
            log_now = step + 1 == total_steps or (step + 1) % tc.log_every == 0
            hook_fields = {k: v for h in hooks for k, v in h.on_log(step + 1, total_steps).items()} if log_now else {}
            # 3. Schedule, clip, step. The learning rate follows progress: steps, or time if budgeted.
            factor = lr_factor(progress_at(step), tc.warmup_fraction, tc.schedule, tc.decay_fraction)
            step_scale = math.prod(r.step_scale(step, total_steps) for r in regularizers)
            for group in optimizer.param_groups:  # a group marked annealed=False (a new head) keeps the plain step
                scale = step_scale if group.get("annealed", True) else 1.0
                group["lr"] = tc.lr * factor * scale * group.get("lr_scale", 1.0)
            if tc.clip_norm:
                accelerator.clip_grad_norm_(objectives.parameters(), tc.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            for r in regularizers:  # decoupled pulls (RecAdam) act on the weights after the optimizer's step
                r.after_step(model, tc.lr * factor, step, total_steps)
            step += 1
            state["step"] = step
            state["tokens"] += int(tokens_per_step)
            state["compute_seconds"] += time.perf_counter() - step_start
            state["elapsed"] = time.perf_counter() - start_clock
            # 4. Log, evaluate, checkpoint.
            window["loss"] += step_loss
            for name, value in step_terms.items():
                window[f"loss_{name}"] += value
            state["window_steps"] += 1
            last_loss = step_loss
            if log_now:
                n = state["window_steps"]
                seconds = time.perf_counter() - window_start
                tps = (
                    min(n, step - resumed_at) * tokens_per_step / max(seconds, 1e-9)
                )  # timed steps of this session only
                losses = {k: v / n for k, v in window.items() if k == "loss" or len(weights) > 1}
                term_losses = {k[5:]: v / n for k, v in window.items() if k != "loss"}
                log.write(
                    {
                        "step": step,
                        "tokens": state["tokens"],
                        **losses,
                        "lr": tc.lr * factor,
                        "tokens_per_second": tps,
                        "elapsed": state["elapsed"],
                        **hook_fields,
                    }
                )
                bar.set_postfix(loss=f"{losses['loss']:.3f}", tok_s=f"{tps:,.0f}")
                window.update(dict.fromkeys(window, 0.0))
                state["window_steps"], window_start = 0, time.perf_counter()
            bar.update(1)
            if (tc.eval_every and step % tc.eval_every == 0 and step < total_steps) or (
                eval_at_end and step == total_steps
            ):
                evaluate(step)
            out_of_time = tc.max_minutes and state["elapsed"] >= 60 * tc.max_minutes
            halted = halt_at_step is not None and step >= halt_at_step
            if (tc.save_every and step % tc.save_every == 0) or step == total_steps or out_of_time or halted:
                save()
            if out_of_time or halted:
                stopped_by = "max_minutes" if out_of_time else "halt"
                break
        if step >= total_steps and tc.max_tokens and total_steps < tc.max_steps:
            stopped_by = "max_tokens"
    except KeyboardInterrupt:
        save()
        raise UserError(
            f"interrupted at step {step}; a checkpoint was saved in {run_dir}; continue with --resume"
        ) from None
    finally:
        bar.close()
    return TrainResult(
        steps=step,
        total_steps=total_steps,
        train_tokens=state["tokens"],
        train_seconds=state["compute_seconds"],
        tokens_per_second=state["tokens"] / max(state["compute_seconds"], 1e-9),
        final_loss=last_loss,
        stopped_by=stopped_by,
        precision=precision,
        term_losses=term_losses,
    )
