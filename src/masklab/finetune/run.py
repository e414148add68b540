"""Fine-tuning an encoder on a labelled task, for every start (`init`) and mode, through the one loop.

Per seed the run directory holds `metrics.jsonl` (train loss and per-layer gradient norms every
`log_every` steps, validation metrics at each evaluation, the trainable groups whenever they change),
`summary.json` (test metrics of the best-validation model, wall time, trainable parameters, layer
analysis), `model/` (save_pretrained + tokenizer) and, while it trains, `checkpoint/` for --resume.
With several seeds, the top directory's summary.json holds the mean and standard deviation, and the
plots overlay the seeds.

Phases per seed: build the start model -> (probe: cache encoder features) -> terms, hooks, optimizer
-> train() with periodic validation keeping the best weights -> test -> layer analysis -> save.
The task is read and encoded once per run, not per seed.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import AutoModelForMaskedLM

from masklab.config import DataConfig, MaskingConfig, TokenizerConfig, TrainConfig, save_config
from masklab.data.labelled import LabelledBatches, batches, collate, encode, mean_length, subsample
from masklab.data.pipeline import prepare_data
from masklab.data.shards import packed_blocks
from masklab.data.tasks import Task, flatten_labels, load_task
from masklab.data.tokenizer import load_tokenizer, train_tokenizer
from masklab.errors import UserError
from masklab.finetune.config import FinetuneConfig
from masklab.finetune.hooks import ModeHook, ValidationHook
from masklab.finetune.layers import layer_cka, relative_weight_change
from masklab.finetune.metrics import evaluate_classifier
from masklab.finetune.modes import anatomy, make_optimizer, set_trainable, trainable_at
from masklab.finetune.start import load_start
from masklab.masking import MLMBatcher
from masklab.masking.batches import TrainBatches
from masklab.models import count_parameters
from masklab.objectives.classify import ClassifyObjective, can_cache_features, model_inputs
from masklab.objectives.mlm import build_mlm
from masklab.preflight import padding_facts, preflight
from masklab.preflight import report as preflight_report
from masklab.regularizers import build_regularizer
from masklab.report.plots import plot_curves, plot_layers
from masklab.report.runs import Run, read_seed_logs
from masklab.runtime import autocast_context, run_precision
from masklab.train import Term, train

EVAL_BATCH = 64
METRICS = (
    "test_accuracy",
    "test_macro_f1",
    "test_loss",
    "best_val_macro_f1",
    "best_val_step",
    "wall_seconds",
    "train_seconds",
    "trainable_parameters",
)


@dataclass
class Encoded:
    """A run's task, encoded once (every seed shares the start's tokenizer); the majority baseline with it."""

    task: Task
    majority_accuracy: float
    by_length: dict = field(default_factory=dict)  # max_length -> (train, validation, test) examples

    def splits(self, cfg: FinetuneConfig, tokenizer, max_length: int) -> tuple[list, list, list]:
        if max_length not in self.by_length:
            self.by_length[max_length] = (
                encode(
                    self.task, subsample(self.task.train, cfg.max_train_examples, cfg.split_seed), tokenizer, max_length
                ),
                encode(
                    self.task,
                    subsample(self.task.validation, cfg.max_eval_examples, cfg.split_seed),
                    tokenizer,
                    max_length,
                ),
                encode(self.task, self.task.test, tokenizer, max_length),
            )
        return self.by_length[max_length]


def majority_accuracy(task: Task) -> float:
    """Accuracy on the test split of always predicting the training split's most frequent label."""
    train_labels = flatten_labels(task.train.labels, task.kind)
    top = max(set(train_labels), key=train_labels.count)
    test_labels = flatten_labels(task.test.labels, task.kind)
    return sum(t == top for t in test_labels) / len(test_labels)


@torch.no_grad()
def cache_features(model, examples: list[dict], kind: str, precision: str) -> list[dict]:
    """The frozen encoder's last hidden states, once per example: (1, H) at [CLS] for sequence heads, (T, H) for
    token heads."""
    model.eval()
    out = []
    for start in range(0, len(examples), EVAL_BATCH):
        chunk = examples[start : start + EVAL_BATCH]
        batch = collate(chunk, 0)
        with autocast_context(precision):
            hidden = model.base_model(**model_inputs(batch)).last_hidden_state.float()  # (B, T, H)
        for i, e in enumerate(chunk):
            feats = hidden[i, :1] if kind == "sequence" else hidden[i, : len(e["input_ids"])]
            out.append({"features": feats, "labels": e["labels"]})
    return out


def _plain_texts(task: Task) -> list[str]:
    """The training examples as text (a token task's words joined by spaces)."""
    return [" ".join(t) if isinstance(t, list) else t for t in task.train.texts]


def _preset_tokenizer(task: Task, cfg: FinetuneConfig, directory: Path):
    """For init=random with a preset: a WordPiece tokenizer trained on the task's training text, once per run."""

    if (directory / "tokenizer.json").exists():
        return load_tokenizer(directory)
    texts = _plain_texts(task) + list(task.train.pairs or [])
    return train_tokenizer(
        iter(texts),
        TokenizerConfig(vocab_size=cfg.vocab_size, min_frequency=1),
        directory,
        model_max_length=cfg.max_length,
    )


def _ever_trained(a, cfg: FinetuneConfig) -> list[str]:
    """Every group the mode will train at some step: these get optimizer state and count as trainable."""
    if cfg.mode == "top-k" and cfg.top_k > a.num_layers:
        raise UserError(
            f"top_k={cfg.top_k} but the model has {a.num_layers} encoder layers; use top_k <= {a.num_layers} "
            "(or mode=full)"
        )
    return trainable_at(a, "full" if cfg.mode == "gradual" else cfg.mode, cfg.top_k, 0, 1)


def loop_config(cfg: FinetuneConfig, total: int, lr: float, seed: int) -> TrainConfig:
    """The one loop's settings for a fine-tuning seed: linear warm-up and decay (Devlin et al.'s schedule)."""
    eval_every = cfg.eval_every or max(1, total // 10)
    return TrainConfig(
        batch_size=cfg.batch_size,
        lr=lr,
        weight_decay=cfg.weight_decay,
        warmup_fraction=cfg.warmup_fraction,
        schedule="linear",
        max_steps=total,
        clip_norm=cfg.clip_norm,
        precision=cfg.precision,
        seed=seed,
        log_every=cfg.log_every,
        eval_every=eval_every,
        save_every=cfg.save_every or eval_every,
    )


def masked_lm_over(encoder, config):
    """A transformers *ForMaskedLM model whose encoder is `encoder` (shared, not copied) and whose decoder
    reads the encoder's word embeddings; the head in between is fresh (load a state into it to reuse one)."""

    mlm = AutoModelForMaskedLM.from_config(config)
    setattr(mlm, mlm.base_model_prefix, encoder)
    mlm.get_output_embeddings().weight = encoder.get_input_embeddings().weight  # tied to the current embeddings
    return mlm


def mlm_term(
    mlm,
    tokenizer,
    tokenizer_dir: Path,
    corpus: str,
    fallback_texts: list[str],
    rate: float,
    weight: float,
    batch_size: int,
    max_length: int,
    run_dir: Path,
    seed: int,
    show_progress: bool,
) -> tuple[Term, list]:
    """Masked-LM batches beside a task (rehearsal, or domain-adaptive MLM on the task's own text) for the
    *ForMaskedLM model `mlm`. `corpus` is any corpus spec; "" = `fallback_texts`, one document per line.
    Returns the term and the (name, parameter) pairs of the head, which live outside the task's model."""

    data_cfg = DataConfig(corpus=corpus, seq_length=min(max_length, 128), val_fraction=0.0)
    if not corpus:
        path = run_dir / "mlm-corpus.txt"
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(t.replace("\n", " ") for t in fallback_texts) + "\n", encoding="utf-8")
        data_cfg = DataConfig(
            corpus=str(path), doc_split="line", min_chars=1, seq_length=data_cfg.seq_length, val_fraction=0.0
        )
    data = prepare_data(data_cfg, TokenizerConfig(), tokenizer_path=str(tokenizer_dir), show_progress=show_progress)
    blocks = packed_blocks(data.shards, "train", data_cfg.seq_length, tokenizer.cls_token_id)
    if len(blocks) == 0:
        raise UserError(
            f"the MLM corpus ({corpus or 'the task text'}) gives no {data_cfg.seq_length}-token block; "
            "give a longer corpus"
        )
    batcher = MLMBatcher(MaskingConfig(rate=rate), tokenizer, seed=seed)
    term = Term(
        "mlm",
        build_mlm(mlm, tokenizer),
        weight,
        lambda n: TrainBatches(blocks, batcher, batch_size, seed, n, show_progress=False),
        batch_size * data_cfg.seq_length,
    )
    own = {p.data_ptr() for p in getattr(mlm, mlm.base_model_prefix).parameters()}
    return term, [(n, p) for n, p in mlm.named_parameters() if p.data_ptr() not in own]


def train_seed(
    cfg: FinetuneConfig,
    encoded: Encoded,
    run_dir: Path,
    seed: int,
    show_progress: bool = True,
    resume: bool = False,
    halt_at_step: int | None = None,
    on_eval=None,
) -> dict | None:
    """Fine-tune one seed into `run_dir`; returns (and writes) its summary, or None when halted early."""

    started = time.perf_counter()
    task = encoded.task
    state = PartialState(cpu=not torch.cuda.is_available())
    run_dir.mkdir(parents=True, exist_ok=True)

    # 1. The start: initial weights + a new head, and the layer groups the mode trains.
    tokenizer_dir = run_dir.parent / "tokenizer"
    model, tokenizer, source = load_start(
        cfg.init,
        cfg.arch,
        task.kind,
        task.label_names,
        cfg.dropout,
        seed,
        lambda: _preset_tokenizer(task, cfg, tokenizer_dir),
    )
    a = anatomy(model)
    ever = _ever_trained(a, cfg)
    if cfg.mode == "gradual" and state.num_processes > 1:
        raise UserError(
            "mode=gradual changes the trained groups during the run, which several processes (DDP) cannot "
            "follow; run it in one process, or use mode=full / top-k / probe"
        )
    initial_model = copy.deepcopy(model)
    initial = {n: p.detach() for n, p in initial_model.named_parameters()}

    # 2. Data: encoded once per run; a probe caches the frozen encoder's outputs instead of recomputing them each step.
    max_length = min(cfg.max_length, getattr(model.config, "max_position_embeddings", cfg.max_length))
    train_ex, val_ex, test_ex = encoded.splits(cfg, tokenizer, max_length)
    precision, precision_info = run_precision(cfg.precision, model, cfg.batch_size * max(1, int(mean_length(train_ex))))
    analysis = batches(val_ex[: cfg.analysis_examples], EVAL_BATCH, tokenizer.pad_token_id)
    order = torch.randperm(len(train_ex), generator=torch.Generator().manual_seed(seed)).tolist()
    facts = preflight_report(
        preflight(
            tokenizer,
            _plain_texts(task)[:64],
            model,
            precision,
            batching=padding_facts([len(train_ex[i]["input_ids"]) for i in order], cfg.batch_size),
        ),
        show_progress and state.is_main_process,
    )
    cached = cfg.mode == "probe" and cfg.cache_features and can_cache_features(model)
    if cached:
        train_ex, val_ex, test_ex = (
            cache_features(model, ex, task.kind, precision) for ex in (train_ex, val_ex, test_ex)
        )
    objective = ClassifyObjective(model, task.kind, cached)

    # 3. Terms, penalties, hooks and the optimizer (one param group per layer group, scaled by layer-wise LR decay).
    per_epoch = math.ceil(len(train_ex) / cfg.batch_size)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    lr = cfg.learning_rate()
    tc = loop_config(cfg, total, lr, seed)
    pad = tokenizer.pad_token_id
    terms = [
        Term(
            "classify",
            objective,
            cfg.objectives["classify"],
            lambda n: LabelledBatches(train_ex, cfg.batch_size, seed, pad, n),
            cfg.batch_size * mean_length(train_ex),
        )
    ]
    extra = []
    if "mlm" in cfg.objectives:
        own_tokenizer = tokenizer_dir if source.startswith("preset ") else Path(source)
        term, extra = mlm_term(
            masked_lm_over(model.base_model, model.config),
            tokenizer,
            own_tokenizer,
            cfg.mlm_corpus,
            _plain_texts(task),
            cfg.mlm_rate,
            cfg.objectives["mlm"],
            cfg.batch_size,
            cfg.max_length,
            run_dir,
            seed,
            show_progress,
        )
        terms.append(term)
    regularizers = [
        build_regularizer(name, strength, exclude=a.groups["head"]) for name, strength in cfg.regularizers.items()
    ]
    for r in regularizers:
        model = r.setup(model)
    set_trainable(
        model, a, trainable_at(a, cfg.mode, cfg.top_k, 0, cfg.unfreeze_every or per_epoch)
    )  # before DDP wraps it
    optimizer = make_optimizer(model, a, ever, lr, cfg.weight_decay, cfg.llrd, extra)
    trainable_params = [p for g in optimizer.param_groups for p in g["params"]]
    val_batches = batches(val_ex, EVAL_BATCH, pad)
    validation = ValidationHook(objective, val_batches, len(task.label_names), precision)
    hooks = [ModeHook(model, a, cfg.mode, cfg.top_k, cfg.unfreeze_every or per_epoch), validation]

    # 4. Train, validating every eval_every steps (and before the first), keeping the best weights.
    torch.manual_seed(seed)  # dropout
    result = train(
        model,
        tokenizer,
        terms,
        optimizer,
        tc,
        run_dir,
        precision,
        regularizers=regularizers,
        hooks=hooks,
        resume=resume,
        halt_at_step=halt_at_step,
        show_progress=show_progress,
        desc=f"fine-tuning seed {seed}",
        eval_at_start=True,
        eval_at_end=True,
        on_eval=on_eval,
    )
    if result.stopped_by == "halt":
        return None

    # 5. Test the best-validation model; compare its layers with the start; save it.
    model.load_state_dict(validation.best_state)
    test = evaluate_classifier(objective, batches(test_ex, EVAL_BATCH, pad), len(task.label_names), precision)
    layers = {
        "weight_change": relative_weight_change(initial, model, a),
        "cka": layer_cka(initial_model, model, a, analysis),
    }
    summary = {
        "task": task.name,
        "kind": task.kind,
        "labels": task.label_names,
        "init": cfg.init,
        "arch": cfg.arch if cfg.init == "random" else None,
        "start": source,
        "mode": cfg.mode,
        "top_k": cfg.top_k if cfg.mode == "top-k" else None,
        "llrd": cfg.llrd,
        "seed": seed,
        "lr": lr,
        "objectives": dict(cfg.objectives),
        "regularizers": dict(cfg.regularizers),
        "steps": total,
        "epochs": total * cfg.batch_size / len(train_ex),
        "train_examples": len(train_ex),
        "val_examples": len(val_ex),
        "test_examples": len(test_ex),
        "precision": precision,
        "precision_choice": precision_info,
        "cached_features": cached,
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "test_loss": test["loss"],
        "majority_accuracy": encoded.majority_accuracy,
        "best_val_step": validation.best_step,
        "best_val_macro_f1": validation.best_score,
        "final_train_losses": result.term_losses,
        "wall_seconds": time.perf_counter() - started,  # this session's loading, encoding, training, testing, analysis
        "train_seconds": result.train_seconds,  # the training steps, across resumes
        "trainable_parameters": sum(p.numel() for p in trainable_params),
        "total_parameters": count_parameters(model),
        "layers": layers,
        "preflight": facts,
    }
    if state.is_main_process:
        if cfg.save_model:
            model.save_pretrained(run_dir / "model", safe_serialization=True)
            tokenizer.save_pretrained(run_dir / "model")
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        shutil.rmtree(
            run_dir / "checkpoint", ignore_errors=True
        )  # only --resume needed it; model/ holds the best weights
    state.wait_for_everyone()
    return summary


# ---- seeds and the run directory ------------------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(summaries: list[dict], run_names: list[str]) -> dict:
    """One summary over seeds: each metric's mean (same key) and sample std (`KEY_std`); per-layer means and stds."""
    out = {
        k: v for k, v in summaries[0].items() if k not in METRICS and k not in ("seed", "layers", "final_train_losses")
    }
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


def run_finetune(
    cfg: FinetuneConfig,
    out: Path,
    show_progress: bool = True,
    resume: bool = False,
    halt_at_step: int | None = None,
    on_eval=None,
) -> dict | None:
    """Fine-tune `cfg.seeds` seeds into OUT/seed-N/, then write OUT/summary.json, config.yaml and plots.

    With `resume`, finished seeds are kept, an interrupted one continues from its checkpoint. Returns
    the summary, or None when `halt_at_step` paused a seed."""

    state = PartialState(cpu=not torch.cuda.is_available())
    names = [f"seed-{cfg.seed + s}" for s in range(cfg.seeds)]
    if resume and not (out / "config.yaml").exists():
        raise UserError(f"--resume: {out} holds no fine-tuning run (no config.yaml); start without --resume")
    if resume and (out / "summary.json").exists():
        raise UserError(
            f"{out} holds a finished fine-tuning run (summary.json); nothing to resume. "
            "Start a new one with another --out"
        )
    if not resume and any((out / n / f).exists() for n in names for f in ("checkpoint", "summary.json")):
        raise UserError(f"{out} already holds a fine-tuning run; continue it with --resume or choose another --out")
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    task = load_task(
        cfg.task,
        cfg.validation,
        cfg.test,
        cfg.text_column,
        cfg.text_pair_column,
        cfg.label_column,
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.split_seed,
    )
    encoded = Encoded(task, majority_accuracy(task))
    summaries = []
    for s, name in enumerate(names):
        seed_dir = out / name
        if (seed_dir / "summary.json").exists():  # finished before an interruption
            summaries.append(json.loads((seed_dir / "summary.json").read_text(encoding="utf-8")))
            continue
        summary = train_seed(
            cfg,
            encoded,
            seed_dir,
            cfg.seed + s,
            show_progress,
            resume=resume and (seed_dir / "checkpoint").exists(),
            halt_at_step=halt_at_step,
            on_eval=on_eval,
        )
        if summary is None:
            return None
        summaries.append(summary)
    summary = aggregate(summaries, names)
    if state.is_main_process:
        (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        run = Run(out.name, out, summary, read_seed_logs(out, summary))
        plot_curves([run], out / "learning_curves.png")
        plot_layers([run], out / "layer_change.png")
    return summary
