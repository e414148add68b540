"""Fine-tuning an encoder on a labelled task: one loop for every start (`init`) and mode.

Per seed the run directory holds `metrics.jsonl` (train loss and per-layer gradient norms every
`log_every` steps, validation metrics at each evaluation, the trainable groups whenever they change),
`summary.json` (test metrics of the best-validation model, wall time, trainable parameters, layer
analysis) and `model/` (save_pretrained + tokenizer). With several seeds, the top directory's
summary.json holds the mean and standard deviation, and the plots overlay the seeds.

Phases: load task -> build the start model -> encode -> (probe: cache encoder features) -> train with
periodic validation, keeping the best weights -> test -> layer analysis -> save.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import time
from pathlib import Path

import torch

from masklab.errors import TrainingDiverged, UserError
from masklab.finetune_config import FinetuneConfig, save_finetune_config
from masklab.models import count_parameters
from masklab.tasks import Split, Task, load_task
from masklab.transfer import (FEATURE_HEADS, anatomy, group_grad_norms, load_start, make_optimizer, set_trainable,
                              trainable_at)

EVAL_BATCH = 64
METRICS = ("test_accuracy", "test_macro_f1", "test_loss", "best_val_macro_f1", "best_val_step", "wall_seconds",
           "train_seconds", "trainable_parameters")


# ---- data ------------------------------------------------------------------------------------------------

def encode(task: Task, split: Split, tokenizer, max_length: int) -> list[dict]:
    """Token ids per example; token tasks label each word's first sub-token and ignore the rest (-100)."""
    labels = task.label_ids(split)
    if task.kind == "token":
        if not tokenizer.is_fast:
            raise UserError("token classification needs a fast tokenizer (tokenizer.json) to align tags with sub-words")
        enc = tokenizer(split.texts, is_split_into_words=True, truncation=True, max_length=max_length)
        out = []
        for i, tags in enumerate(labels):
            previous, aligned = None, []
            for word in enc.word_ids(i):
                aligned.append(tags[word] if word is not None and word != previous else -100)
                previous = word
            out.append({k: enc[k][i] for k in enc.keys()} | {"labels": aligned})
        return out
    enc = tokenizer(split.texts, split.pairs, truncation=True, max_length=max_length)
    return [{k: enc[k][i] for k in enc.keys()} | {"labels": labels[i]} for i in range(len(labels))]


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest example of the batch: ids with [PAD], masks with 0, token labels with -100."""
    width = max(len(e.get("input_ids", ())) for e in examples)
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0, "labels": -100}
    batch = {}
    for key in examples[0]:
        if key == "features":
            batch[key] = torch.nn.utils.rnn.pad_sequence([e[key] for e in examples], batch_first=True)
        elif key == "labels" and not isinstance(examples[0][key], list):
            batch[key] = torch.tensor([e[key] for e in examples])
        else:
            batch[key] = torch.tensor([e[key] + [fill[key]] * (width - len(e[key])) for e in examples])
    return batch


def batches(examples: list[dict], size: int, pad_id: int) -> list[dict]:
    return [collate(examples[i:i + size], pad_id) for i in range(0, len(examples), size)]


def subsample(split: Split, n: int, seed: int) -> Split:
    if not n or n >= len(split.texts):
        return split
    idx = sorted(torch.randperm(len(split.texts), generator=torch.Generator().manual_seed(seed))[:n].tolist())
    return Split([split.texts[i] for i in idx], [split.labels[i] for i in idx],
                 [split.pairs[i] for i in idx] if split.pairs is not None else None)


# ---- model calls ---------------------------------------------------------------------------------------------

def _inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def make_forward(model, kind: str, cached: bool):
    """batch -> logits: the full model, or (probe on cached features) only its head."""
    if cached:
        head = FEATURE_HEADS[model.config.model_type]
        return lambda batch: head(model, batch["features"], kind)
    return lambda batch: model(**_inputs(batch)).logits


@torch.no_grad()
def cache_features(model, examples: list[dict], kind: str, precision: str) -> list[dict]:
    """The frozen encoder's last hidden states, once per example: (1, H) at [CLS] for sequence heads, (T, H) for token heads."""
    from masklab.evaluate import autocast_context

    model.eval()
    out = []
    for start in range(0, len(examples), EVAL_BATCH):
        chunk = examples[start:start + EVAL_BATCH]
        batch = collate(chunk, 0)
        with autocast_context(precision):
            hidden = model.base_model(**_inputs(batch)).last_hidden_state.float()  # (B, T, H)
        for i, e in enumerate(chunk):
            feats = hidden[i, :1] if kind == "sequence" else hidden[i, :len(e["input_ids"])]
            out.append({"features": feats, "labels": e["labels"]})
    return out


def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def classification_metrics(pred: torch.Tensor, gold: torch.Tensor, num_labels: int) -> dict:
    """Accuracy and macro-F1 (mean F1 over the labels that occur in gold or predictions)."""
    confusion = torch.bincount(gold * num_labels + pred, minlength=num_labels ** 2).reshape(num_labels, num_labels).double()
    tp = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)
    f1 = 2 * tp / (support + predicted).clamp(min=1)
    present = (support + predicted) > 0
    return {"accuracy": float(tp.sum() / confusion.sum().clamp(min=1)), "macro_f1": float(f1[present].mean())}


@torch.no_grad()
def evaluate(model, forward, eval_batches: list[dict], num_labels: int, precision: str) -> dict:
    from masklab.evaluate import autocast_context

    was_training = model.training
    model.eval()
    preds, golds, total = [], [], 0.0
    for batch in eval_batches:
        with autocast_context(precision):
            logits = forward(batch)
        keep = batch["labels"].reshape(-1) != -100
        total += float(loss_of(logits, batch["labels"])) * int(keep.sum())
        preds.append(logits.reshape(-1, logits.shape[-1]).argmax(-1)[keep])
        golds.append(batch["labels"].reshape(-1)[keep])
    model.train(was_training)
    pred, gold = torch.cat(preds), torch.cat(golds)
    return {"loss": total / max(len(gold), 1), **classification_metrics(pred, gold, num_labels)}


def _flat(task: Task, labels: list) -> list:
    return [t for tags in labels for t in tags] if task.kind == "token" else labels


def majority_accuracy(task: Task) -> float:
    """Accuracy on the test split of always predicting the training split's most frequent label."""
    train = _flat(task, task.train.labels)
    top = max(set(train), key=train.count)
    test = _flat(task, task.test.labels)
    return sum(t == top for t in test) / len(test)


# ---- one seed -----------------------------------------------------------------------------------------------

def _preset_tokenizer(task: Task, cfg: FinetuneConfig, directory: Path):
    """For init=random with a preset: a WordPiece tokenizer trained on the task's training text, once per run."""
    from masklab.config import TokenizerConfig
    from masklab.data.tokenizer import load_tokenizer, train_tokenizer

    if (directory / "tokenizer.json").exists():
        return load_tokenizer(directory)
    texts = [" ".join(t) if isinstance(t, list) else t for t in task.train.texts] + list(task.train.pairs or [])
    return train_tokenizer(iter(texts), TokenizerConfig(vocab_size=cfg.vocab_size, min_frequency=1), directory,
                           model_max_length=cfg.max_length)


def _ever_trained(a, cfg: FinetuneConfig) -> list[str]:
    """Every group the mode will train at some step: these get optimizer state and count as trainable."""
    if cfg.mode == "top-k" and cfg.top_k > a.num_layers:
        raise UserError(f"top_k={cfg.top_k} but the model has {a.num_layers} encoder layers; use top_k <= {a.num_layers} "
                        "(or mode=full)")
    return trainable_at(a, "full" if cfg.mode == "gradual" else cfg.mode, cfg.top_k, 0, 1)


def train_seed(cfg: FinetuneConfig, task: Task, run_dir: Path, seed: int, show_progress: bool = True) -> dict:
    """Fine-tune one seed into `run_dir`; returns (and writes) its summary."""
    from tqdm.auto import tqdm

    from masklab.evaluate import autocast_context
    from masklab.layer_analysis import layer_cka, relative_weight_change
    from masklab.train import MetricsLog, lr_factor, resolve_precision

    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(cfg.precision)

    # 1. The start: initial weights + a new head, and the layer groups the mode trains.
    model, tokenizer, source = load_start(cfg.init, cfg.arch, task.kind, task.label_names, cfg.dropout, seed,
                                          lambda: _preset_tokenizer(task, cfg, run_dir.parent / "tokenizer"))
    a = anatomy(model)
    ever = _ever_trained(a, cfg)
    initial_model = copy.deepcopy(model)
    initial = {n: p.detach() for n, p in initial_model.named_parameters()}

    # 2. Data: encode once; a probe caches the frozen encoder's outputs instead of recomputing them each step.
    max_length = min(cfg.max_length, getattr(model.config, "max_position_embeddings", cfg.max_length))
    train_ex = encode(task, subsample(task.train, cfg.max_train_examples, cfg.split_seed), tokenizer, max_length)
    val_ex = encode(task, subsample(task.validation, cfg.max_eval_examples, cfg.split_seed), tokenizer, max_length)
    test_ex = encode(task, task.test, tokenizer, max_length)
    analysis = batches(val_ex[:cfg.analysis_examples], EVAL_BATCH, tokenizer.pad_token_id)
    cached = cfg.mode == "probe" and cfg.cache_features and model.config.model_type in FEATURE_HEADS
    if cached:
        train_ex, val_ex, test_ex = (cache_features(model, ex, task.kind, precision) for ex in (train_ex, val_ex, test_ex))
    forward = make_forward(model, task.kind, cached)
    val_batches = batches(val_ex, EVAL_BATCH, tokenizer.pad_token_id)

    # 3. Schedule and optimizer (one param group per layer group, scaled by layer-wise LR decay).
    per_epoch = math.ceil(len(train_ex) / cfg.batch_size)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    every = cfg.unfreeze_every or per_epoch
    eval_every = cfg.eval_every or max(1, total // 10)
    lr = cfg.learning_rate()
    optimizer = make_optimizer(model, a, ever, lr, cfg.weight_decay, cfg.llrd)
    trainable_params = [p for g in optimizer.param_groups for p in g["params"]]
    log = MetricsLog(run_dir / "metrics.jsonl", True)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout

    def validate(step: int) -> dict:
        metrics = evaluate(model, forward, val_batches, len(task.label_names), precision)
        log.write({"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
        return metrics

    best = {"step": 0, "macro_f1": validate(0)["macro_f1"], "state": copy.deepcopy(model.state_dict())}
    order: list[int] = []
    groups: list[str] = []
    window: list[float] = []
    train_started = time.perf_counter()
    bar = tqdm(total=total, desc=f"fine-tuning seed {seed}", unit="step", disable=not show_progress)
    for step in range(total):
        # 4. Which groups train now (changes only in gradual mode); frozen groups get no gradient at all.
        now = trainable_at(a, cfg.mode, cfg.top_k, step, every)
        if now != groups:
            groups = now
            set_trainable(model, a, groups)
            log.write({"step": step, "trainable": groups})
        model.train()
        if cfg.mode == "probe":
            model.base_model.eval()  # a probe reads fixed features: no dropout inside the frozen encoder
        # 5. Forward, backward, clip, step.
        if not order:
            order = torch.randperm(len(train_ex), generator=generator).tolist()
        chunk, order = order[:cfg.batch_size], order[cfg.batch_size:]
        batch = collate([train_ex[i] for i in chunk], tokenizer.pad_token_id)
        with autocast_context(precision):
            logits = forward(batch)
        loss = loss_of(logits, batch["labels"])
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the loss became {float(loss)} at step {step + 1}; lower lr (now {lr:g}) or use precision=fp32")
        loss.backward()
        log_now = (step + 1) % cfg.log_every == 0 or step + 1 == total
        norms = group_grad_norms(model, a) if log_now else {}
        if cfg.clip_norm:
            torch.nn.utils.clip_grad_norm_(trainable_params, cfg.clip_norm)
        factor = lr_factor(step / total, cfg.warmup_fraction, "linear")
        for g in optimizer.param_groups:
            g["lr"] = lr * g["lr_scale"] * factor
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        bar.update(1)
        # 6. Log; validate and keep the best weights (selected on validation macro-F1).
        if log_now:
            log.write({"step": step + 1, "loss": sum(window) / len(window), "lr": lr * factor, "grad_norm": norms})
            bar.set_postfix(loss=f"{sum(window) / len(window):.3f}")
            window = []
        if (step + 1) % eval_every == 0 or step + 1 == total:
            score = validate(step + 1)["macro_f1"]
            if score > best["macro_f1"]:
                best = {"step": step + 1, "macro_f1": score, "state": copy.deepcopy(model.state_dict())}
    bar.close()
    train_seconds = time.perf_counter() - train_started

    # 7. Test the best-validation model; compare its layers with the start; save it.
    model.load_state_dict(best["state"])
    test = evaluate(model, forward, batches(test_ex, EVAL_BATCH, tokenizer.pad_token_id), len(task.label_names), precision)
    layers = {"weight_change": relative_weight_change(initial, model, a), "cka": layer_cka(initial_model, model, a, analysis)}
    if cfg.save_model:
        model.save_pretrained(run_dir / "model", safe_serialization=True)
        tokenizer.save_pretrained(run_dir / "model")
    summary = {
        "task": task.name, "kind": task.kind, "labels": task.label_names, "init": cfg.init,
        "arch": cfg.arch if cfg.init == "random" else None, "start": source, "mode": cfg.mode, "top_k": cfg.top_k if cfg.mode == "top-k" else None, "llrd": cfg.llrd, "seed": seed, "lr": lr,
        "steps": total, "epochs": total * cfg.batch_size / len(train_ex), "train_examples": len(train_ex),
        "val_examples": len(val_ex), "test_examples": len(test_ex), "precision": precision, "cached_features": cached,
        "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"], "test_loss": test["loss"],
        "majority_accuracy": majority_accuracy(task), "best_val_step": best["step"], "best_val_macro_f1": best["macro_f1"],
        "wall_seconds": time.perf_counter() - started,  # everything: loading, encoding, training, testing, analysis
        "train_seconds": train_seconds,  # the training loop, including its validation passes
        "trainable_parameters": sum(p.numel() for p in trainable_params),
        "total_parameters": count_parameters(model), "layers": layers,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


# ---- seeds and the run directory ------------------------------------------------------------------------------

def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(summaries: list[dict], run_names: list[str]) -> dict:
    """One summary over seeds: each metric's mean (same key) and sample std (`KEY_std`); per-layer means and stds."""
    out = {k: v for k, v in summaries[0].items() if k not in METRICS and k not in ("seed", "layers")}
    out["seeds"] = [s["seed"] for s in summaries]
    out["runs"] = run_names
    for key in METRICS:
        out[key], out[f"{key}_std"] = _mean_std([s[key] for s in summaries])
    out["layers"] = {}
    for measure in ("weight_change", "cka"):
        names = list(summaries[0]["layers"][measure])
        pairs = {n: _mean_std([s["layers"][measure][n] for s in summaries]) for n in names}
        out["layers"][measure] = {n: m for n, (m, _) in pairs.items()}
        out["layers"][f"{measure}_std"] = {n: sd for n, (_, sd) in pairs.items()}
    return out


def run_finetune(cfg: FinetuneConfig, out: Path, show_progress: bool = True) -> dict:
    """Fine-tune `cfg.seeds` seeds into OUT/seed-N/, then write OUT/summary.json, config.yaml and plots."""
    from masklab.compare import load_run, plot_curves, plot_layers

    out.mkdir(parents=True, exist_ok=True)
    save_finetune_config(cfg, out / "config.yaml")
    task = load_task(cfg.task, cfg.validation, cfg.test, cfg.text_column, cfg.text_pair_column, cfg.label_column,
                     cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    names = [f"seed-{cfg.seed + s}" for s in range(cfg.seeds)]
    summaries = [train_seed(cfg, task, out / name, cfg.seed + s, show_progress) for s, name in enumerate(names)]
    summary = aggregate(summaries, names)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    run = load_run(out)
    plot_curves([run], out / "learning_curves.png")
    plot_layers([run], out / "layer_change.png")
    return summary
