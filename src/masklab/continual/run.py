"""A task sequence, stage by stage, through the one loop; measured after every stage.

Per seed, DIR/seed-N/ holds `stage-K/` (the loop's metrics.jsonl, and `checkpoint/` while the stage
trains), `progress.safetensors` (everything measured so far, the replay memory and the regularizers' anchors,
written atomically after each stage), `model/` (the continual model after the last finished stage) and
`summary.json`. DIR/summary.json holds the means over seeds and `_std` keys; DIR/report.html and
report.md the report. A killed sequence resumes at the stage and step where it stopped.

Phases per seed: start model + one head per task -> stage 0 (a linear probe per task, general-text
scores) -> per task: terms (task, replay, mlm-mix, joint), regularizers, trainable weights -> train()
-> end_task (Fisher, anchors) and memory -> accuracy row, general text, layer change -> save.
Then probes on the final encoder, and each task fine-tuned alone from the start (the learning gap).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType

from masklab.config import TokenizerConfig, TrainConfig, save_config
from masklab.continual.config import ContinualConfig, load_continual_config
from masklab.continual.general import load_general_text, start_head
from masklab.continual.memory import memory_size, reservoir
from masklab.continual.methods import Cure, build_cure
from masklab.continual.metrics import aggregate_seeds, sequence_metrics
from masklab.continual.model import ContinualModel, build_model
from masklab.continual.probe import probe_accuracy
from masklab.data.labelled import LabelledBatches, batches, collate, encode, mean_length, subsample
from masklab.data.tasks import Task, load_task
from masklab.data.tokenizer import load_tokenizer, train_tokenizer
from masklab.errors import UserError
from masklab.finetune.layers import layer_cka, relative_weight_change
from masklab.finetune.metrics import evaluate_classifier
from masklab.finetune.modes import anatomy
from masklab.finetune.run import masked_lm_over, mlm_term
from masklab.fsutil import read_tree, replace_directory, write_json_atomic, write_tree_atomic
from masklab.objectives.classify import ClassifyObjective
from masklab.preflight import padding_facts, preflight
from masklab.preflight import report as preflight_report
from masklab.regularizers import build_regularizer
from masklab.regularizers.fisher import FinishedTask
from masklab.report.continual import write_report
from masklab.runtime import default_cache_root, device_of, run_precision
from masklab.train import Term, adamw, decays, train

EVAL_BATCH = 64
NUMERIC = (
    "accuracy_matrix",
    "average_accuracy",
    "forgetting",
    "mean_forgetting",
    "bwt",
    "fwt",
    "learning_accuracy",
    "mean_learning_accuracy",
    "probe_recovered_accuracy",
    "mlm_loss",
    "delta_mlm",
    "pseudo_perplexity",
    "delta_pseudo_perplexity",
    "seconds_per_stage",
    "eval_seconds_per_stage",
    "alone_accuracy",
    "learning_gap",
    "mean_learning_gap",
    "trainable_parameters",
    "wall_seconds",
)


@dataclass
class TaskData:
    task: Task
    train: list[dict]
    fisher: list[dict]  # held-out (validation) examples for the Fisher
    test: list[dict]


def load_tasks(cfg: ContinualConfig) -> list[Task]:
    if len(cfg.tasks) < 2:
        raise UserError(
            f"a task sequence needs at least two tasks (got {len(cfg.tasks)}: {', '.join(cfg.tasks) or 'none'}); "
            "pass --tasks A,B[,C...] or --tasks builtin:seq-en"
        )
    if len(set(cfg.tasks)) < len(cfg.tasks):
        raise UserError(f"a task appears twice in --tasks {','.join(cfg.tasks)}; name each task once")
    return [load_task(spec, split_seed=cfg.split_seed) for spec in cfg.tasks]


def encode_tasks(tasks: list[Task], tokenizer, cfg: ContinualConfig, max_length: int) -> list[TaskData]:
    return [
        TaskData(
            t,
            encode(t, subsample(t.train, cfg.max_train_examples, cfg.split_seed), tokenizer, max_length),
            encode(t, subsample(t.validation, cfg.fisher_examples, cfg.split_seed), tokenizer, max_length),
            encode(t, subsample(t.test, cfg.max_test_examples, cfg.split_seed), tokenizer, max_length),
        )
        for t in tasks
    ]


def peft_config(cure: Cure, cfg: ContinualConfig):

    targets = [t.strip() for t in cfg.target_modules.split(",") if t.strip()] or None
    kind = TaskType.FEATURE_EXTRACTION  # the heads are ours; peft wraps the encoder only
    if cure.adapter == "lora":
        return LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            task_type=kind,
        )
    if cure.adapter == "ia3":
        return IA3Config(target_modules=targets, feedforward_modules=[] if targets else None, task_type=kind)
    if cure.adapter == "prompt":
        return PromptTuningConfig(num_virtual_tokens=cfg.virtual_tokens, task_type=kind)
    return PrefixTuningConfig(num_virtual_tokens=cfg.virtual_tokens, task_type=kind)


def _regularizers(cure: Cure, cfg: ContinualConfig, cm: ContinualModel, lr: float, seed: int) -> list:
    exclude = cm.head_names()
    options = {
        "ewc": {"fisher": cfg.ewc_fisher, "online": cfg.ewc_online, "gamma": cfg.ewc_gamma, "seed": seed},
        "recadam": {"lr": lr, "k": cfg.recadam_k, "t0": cfg.recadam_t0},
    }
    return [
        build_regularizer(name, strength, exclude=exclude, **options.get(name, {}))
        for name, strength in cure.regularizers.items()
    ]


def _finished(
    cm: ContinualModel, data: TaskData, estimator: str, batch_size: int, pad: int, index: int
) -> FinishedTask:
    def log_probs(batch):
        cm.activate(index)
        batch = {k: v.to(device_of(cm)) for k, v in batch.items()}
        logits = cm.tasks[index](**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        labels = batch["labels"].reshape(-1)
        keep = labels != -100
        return F.log_softmax(logits.reshape(-1, logits.shape[-1])[keep], -1), labels[keep]

    size = batch_size if estimator == "batch" else 1
    examples = [collate(data.fisher[i : i + size], pad) for i in range(0, len(data.fisher), size)]
    return FinishedTask(examples, log_probs, len(data.task.label_names), data.task.kind)


def _task_accuracy(cm: ContinualModel, j: int, data: TaskData, pad: int, precision: str) -> float:
    cm.activate(j)
    objective = ClassifyObjective(cm.tasks[j], data.task.kind)
    return evaluate_classifier(objective, batches(data.test, EVAL_BATCH, pad), len(data.task.label_names), precision)[
        "accuracy"
    ]


def _probe(cm: ContinualModel, j: int, data: TaskData, cfg: ContinualConfig, pad: int, precision: str) -> float:
    return probe_accuracy(
        cm, j, data.train[: cfg.probe_examples], data.test, data.task.kind, len(data.task.label_names), pad, precision
    )


# tensors as safetensors, the rest as JSON in its metadata: loads without running code
PROGRESS = "progress.safetensors"


class Sequence:
    """One seed's sequence: the model, its data and measurements, and the stage loop."""

    def __init__(
        self,
        cfg: ContinualConfig,
        cure: Cure,
        tasks: list[Task],
        out: Path,
        seed: int,
        show_progress: bool,
        tokenizer_dir: Path | None = None,
    ):
        self.cfg, self.cure, self.out, self.seed, self.show = cfg, cure, out, seed, show_progress
        self.started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        self.preset_tokenizer_dir = (
            tokenizer_dir or out.parent / "tokenizer"
        )  # init=random with a preset: shared by seeds
        if cure.adapter and cfg.adapter == "per-task" and (cure.replay or cure.joint):
            raise UserError(
                "with adapter=per-task an earlier task's batches would run through the current task's adapter; "
                "use adapter=shared with replay or joint"
            )
        if cure.mlm_mix and not cfg.general_corpus:
            raise UserError(
                "mlm-mix trains on general_corpus, which is empty; set general_corpus=builtin:en-chat or a file"
            )
        self.cm, self.tokenizer, self.source = build_model(
            cfg.init, cfg.arch, tasks, cfg.dropout, seed, lambda: self._preset_tokenizer(tasks)
        )
        self.cm.to(
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )  # anchors and probes live with the model
        if cure.adapter:
            if cure.adapter in ("prompt", "prefix") and any(t.kind == "token" for t in tasks):
                raise UserError(
                    f"{cure.adapter} tuning puts virtual tokens in the input, which shifts a token task's "
                    "labels; use lora or ia3 for token tasks"
                )
            self.cm.add_adapter(cure.adapter, peft_config(cure, cfg), cfg.adapter == "per-task")
        positions = getattr(self.cm.encoder.config, "max_position_embeddings", cfg.max_length)
        if cure.adapter == "prompt":
            positions -= cfg.virtual_tokens  # the virtual tokens take positions too
        max_length = min(cfg.max_length, positions)
        if max_length < 8:
            raise UserError(
                f"{cfg.virtual_tokens} virtual tokens leave {max_length} of the model's positions for the text; "
                "lower virtual_tokens"
            )
        self.pad = self.tokenizer.pad_token_id
        self.data = encode_tasks(tasks, self.tokenizer, cfg, max_length)
        if cure.replay:  # a memory larger than its task is an error before anything trains
            for d in self.data:
                memory_size(len(d.train), cfg.replay_fraction, cfg.replay_min, d.task.name)
        self.precision, _ = run_precision(
            cfg.precision, self.cm.tasks[0], cfg.batch_size * max(1, int(mean_length(self.data[0].train)))
        )
        texts = [
            " ".join(t) if isinstance(t, list) else t for task in tasks for t in task.train.texts[: 64 // len(tasks)]
        ]
        lengths = [len(e["input_ids"]) for d in self.data for e in d.train]
        self.preflight = preflight_report(
            preflight(
                self.tokenizer, texts, self.cm.tasks[0], self.precision, batching=padding_facts(lengths, cfg.batch_size)
            ),
            show_progress,
        )
        self.lr = cure.learning_rate(cfg)
        self.regs = _regularizers(cure, cfg, self.cm, self.lr, seed)
        self.general = None
        self.head_origin = None
        if cfg.general_corpus:
            self.general = load_general_text(
                cfg.general_corpus, self.tokenizer, max_length, cfg.general_blocks, cfg.pll_sentences
            )
            self.probe_head, self.head_origin = start_head(
                self.cm,
                self.source,
                self.general,
                self.tokenizer,
                cfg.mlm_head_steps,
                max_length,
                self.precision,
                show_progress,
            )
        self.analysis = batches(self.data[0].fisher[:128], EVAL_BATCH, self.pad)
        self.progress = {
            "stage": 0,
            "rows": [],
            "mlm_loss": [],
            "pseudo_perplexity": [],
            "seconds": [],
            "eval_seconds": [],
            "layers": [],
            "memory": {},
            "regularizers": [],
            "trainable_parameters": [],
        }

    def _preset_tokenizer(self, tasks: list[Task]):

        directory = self.preset_tokenizer_dir
        if (directory / "tokenizer.json").exists():
            return load_tokenizer(directory)
        texts = [" ".join(t) if isinstance(t, list) else t for task in tasks for t in task.train.texts]
        return train_tokenizer(
            iter(texts),
            TokenizerConfig(vocab_size=8000, min_frequency=1),
            directory,
            model_max_length=self.cfg.max_length,
        )

    def _tokenizer_dir(self) -> Path:
        return Path(self.source) if Path(self.source).is_dir() else self.preset_tokenizer_dir

    # ---- measurement ---------------------------------------------------------------------------------
    def measure(self, stage: int, previous_plain) -> tuple[list[float], object]:
        """The accuracy row after `stage` (heads for trained tasks, probes for the rest), general text, layers."""
        started = time.perf_counter()
        row = [
            _task_accuracy(self.cm, j, d, self.pad, self.precision)
            if j < stage
            else _probe(self.cm, j, d, self.cfg, self.pad, self.precision)
            for j, d in enumerate(self.data)
        ]
        latest = max(stage - 1, 0)
        if self.general is not None:
            self.progress["mlm_loss"].append(
                self.probe_head.masked_loss(self.cm, latest, self.general.eval_batches, self.precision)
            )
            self.progress["pseudo_perplexity"].append(
                self.probe_head.pseudo_perplexity(self.cm, latest, self.general.pll_ids, self.tokenizer, self.precision)
            )
        plain = self.cm.plain_model(latest)
        if stage and plain is not None and previous_plain is not None:
            a = anatomy(plain)
            before = {n: p.detach() for n, p in previous_plain.named_parameters()}
            self.progress["layers"].append(
                {
                    "weight_change": relative_weight_change(before, plain, a),
                    "cka": layer_cka(previous_plain, plain, a, self.analysis),
                }
            )
        elif stage:
            self.progress["layers"].append(None)  # prompt / prefix tuning: the encoder's weights do not change
        self.progress["rows"].append(row)
        self.progress["eval_seconds"].append(time.perf_counter() - started)
        return row, plain

    # ---- one stage -------------------------------------------------------------------------------------
    def terms(self, k: int, stage_dir: Path) -> tuple[list[Term], list[int], list]:
        """The objective list of stage k (0-based task index): the task, and what the cure mixes in; the
        heads it trains, and the (name, parameter) pairs it trains outside the model (mlm-mix's head)."""
        cfg, d = self.cfg, self.data[k]
        bs = cfg.batch_size

        def classify(j: int, name: str, examples: list[dict], size: int, weight: float) -> Term:
            return Term(
                name,
                ClassifyObjective(self.cm.tasks[j], self.data[j].task.kind),
                weight,
                lambda n: LabelledBatches(examples, size, self.seed * 1000 + j, self.pad, n),
                size * mean_length(examples),
            )

        terms = [classify(k, f"task_{k}", d.train, bs, 1.0)]
        heads, extra = [k], []
        for j in range(k):
            if self.cure.joint:
                terms.append(classify(j, f"task_{j}", self.data[j].train, bs, 1.0))
                heads.append(j)
            elif self.cure.replay:
                memory = [self.data[j].train[i] for i in self.progress["memory"][j]]
                terms.append(classify(j, f"replay_{j}", memory, cfg.replay_batch, cfg.replay_batch / bs))
                heads.append(j)
        if self.cure.mlm_mix:
            mix = masked_lm_over(self.cm.encoder, self.cm.tasks[0].config)
            state = {
                n: v
                for n, v in self.probe_head.model.state_dict().items()
                if not n.endswith("decoder.weight") and not n.startswith(mix.base_model_prefix + ".")
            }
            mix.load_state_dict(state, strict=False)  # starts from the start's head; trained beside the task
            term, extra = mlm_term(
                mix,
                self.tokenizer,
                self._tokenizer_dir(),
                "",
                self.general.train_texts,
                0.15,
                cfg.mlm_weight,
                bs,
                min(cfg.max_length, 64),
                stage_dir,
                self.seed,
                False,
            )
            terms.append(term)
        return terms, heads, extra

    def param_groups(self, extra: list) -> list[dict]:
        """AdamW groups of what trains now: the shared weights (annealed by RecAdam) and the heads (not), each
        split into weight matrices (decayed) and the rest."""
        heads = set(self.cm.head_names())
        trained = [(n, p) for n, p in self.cm.named_parameters() if p.requires_grad]
        shared = [(n, p) for n, p in trained if n not in heads]
        own = [(n, p) for n, p in trained if n in heads] + list(extra)
        groups = []
        for annealed, named in ((True, shared), (False, own)):
            for wd in (True, False):
                chosen = [p for n, p in named if decays(n, p) == wd]
                if chosen:
                    groups.append(
                        {"params": chosen, "weight_decay": self.cfg.weight_decay if wd else 0.0, "annealed": annealed}
                    )
        return groups

    def stage(self, k: int, resume: bool, halt_at_step: int | None) -> bool:
        """Train task k (0-based); False when halted inside the stage."""
        cfg, d = self.cfg, self.data[k]
        started = time.perf_counter()
        stage_dir = self.out / f"stage-{k + 1}"
        stage_dir.mkdir(parents=True, exist_ok=True)
        per_epoch = math.ceil(len(d.train) / cfg.batch_size)
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
        terms, heads, extra = self.terms(k, stage_dir)
        self.cm.activate(k)
        self.cm.set_trainable(heads, k, self.cure.freeze_layers)
        for r in self.regs:
            r.setup(self.cm)
        optimizer = adamw(self.param_groups(extra), self.lr)
        tc = TrainConfig(
            batch_size=cfg.batch_size,
            lr=self.lr,
            weight_decay=cfg.weight_decay,
            warmup_fraction=cfg.warmup_fraction,
            schedule="linear",
            max_steps=total,
            clip_norm=cfg.clip_norm,
            precision=cfg.precision,
            seed=self.seed,
            log_every=10,
            eval_every=0,
            save_every=max(1, total // 4),
        )
        torch.manual_seed(self.seed * 1000 + k)  # dropout
        result = train(
            self.cm,
            self.tokenizer,
            terms,
            optimizer,
            tc,
            stage_dir,
            self.precision,
            regularizers=self.regs,
            resume=resume,
            halt_at_step=halt_at_step,
            show_progress=self.show,
            desc=f"seed {self.seed} stage {k + 1}/{len(self.data)}: {d.task.name}",
        )
        if result.stopped_by == "halt":
            return False
        # End of the task: the regularizers anchor here (EWC's Fisher on held-out examples), the memory takes a
        # sample; after the last task nothing follows that would use them.
        if k + 1 < len(self.data):
            fisher = any(r.needs_fisher for r in self.regs)
            finished = _finished(self.cm, d, cfg.ewc_fisher, cfg.batch_size, self.pad, k) if fisher else None
            for r in self.regs:
                r.end_task(self.cm, finished)
        if self.cure.replay:
            size = memory_size(len(d.train), cfg.replay_fraction, cfg.replay_min, d.task.name)
            self.progress["memory"][k] = reservoir(list(range(len(d.train))), size, self.seed * 1000 + k)
        self.progress["seconds"].append(time.perf_counter() - started)
        self.progress["trainable_parameters"].append(
            sum(p.numel() for g in optimizer.param_groups for p in g["params"])
        )
        return True

    def save(self, k: int) -> None:
        """After stage k (1-based): the model and everything measured, atomically; the stage's checkpoint goes."""
        self.cm.save_pretrained(self.out / ".model-new")
        replace_directory(self.out / ".model-new", self.out / "model", self.out / ".model-old")
        self.progress["stage"] = k
        self.progress["regularizers"] = [r.state_dict() for r in self.regs]
        write_tree_atomic(self.out / PROGRESS, self.progress)
        shutil.rmtree(self.out / f"stage-{k}" / "checkpoint", ignore_errors=True)

    def restore(self) -> None:
        self.progress = read_tree(self.out / PROGRESS)
        if self.progress["stage"]:  # killed inside stage 1: the start is rebuilt, there is no model/ yet
            self.cm.load(self.out / "model" if (self.out / "model").exists() else self.out / ".model-old")
        for r, state in zip(self.regs, self.progress["regularizers"]):
            r.load_state_dict(state)


def run_seed(
    cfg: ContinualConfig,
    cure: Cure,
    tasks: list[Task],
    out: Path,
    seed: int,
    show_progress: bool,
    resume: bool,
    halt: tuple[int, int] | None,
) -> dict | None:
    seq = Sequence(cfg, cure, tasks, out, seed, show_progress)
    if resume and (out / PROGRESS).exists():
        seq.restore()
    plain = seq.cm.plain_model(max(seq.progress["stage"] - 1, 0))
    if seq.progress["stage"] == 0 and not seq.progress["rows"]:
        _, plain = seq.measure(0, None)
        write_tree_atomic(out / PROGRESS, seq.progress)
    for k in range(seq.progress["stage"], len(tasks)):
        halt_step = halt[1] if halt and halt[0] == k + 1 else None
        stage_resume = resume and (out / f"stage-{k + 1}" / "checkpoint").exists()
        if not seq.stage(k, stage_resume, halt_step):
            return None
        _, plain = seq.measure(k + 1, plain)
        seq.save(k + 1)
    return seed_summary(seq)


def export_models(seq: Sequence) -> list[str]:
    """Each task's final model (its head over the encoder, adapters merged) as a save_pretrained checkpoint
    that `pipeline("text-classification")` loads; prompt / prefix tuning cannot be merged and is skipped."""
    written = []
    for j in range(len(seq.data)):
        model = seq.cm.plain_model(j)
        if model is None:
            continue
        path = seq.out / "models" / f"task-{j + 1}"
        model.save_pretrained(path, safe_serialization=True)
        seq.tokenizer.save_pretrained(path)
        written.append(str(path))
    return written


def seed_summary(seq: Sequence) -> dict:
    cfg, p = seq.cfg, seq.progress
    recovered = [_probe(seq.cm, j, d, cfg, seq.pad, seq.precision) for j, d in enumerate(seq.data)]
    matrix = p["rows"]
    metrics = sequence_metrics(matrix)
    alone = alone_accuracies(cfg, seq) if cfg.reference else None
    summary = {
        "tasks": [d.task.name for d in seq.data],
        "method": cfg.method,
        "strength": seq.cure.strength(cfg),
        "init": cfg.init,
        "start": seq.source,
        "seed": seq.seed,
        "lr": seq.lr,
        "precision": seq.precision,
        "steps_per_stage": [
            cfg.max_steps or max(1, math.ceil(cfg.epochs * math.ceil(len(d.train) / cfg.batch_size))) for d in seq.data
        ],
        "train_examples": [len(d.train) for d in seq.data],
        "test_examples": [len(d.test) for d in seq.data],
        "accuracy_matrix": matrix,
        **metrics,
        "probe_recovered_accuracy": recovered,
        "mlm_loss": p["mlm_loss"] or None,
        "delta_mlm": (p["mlm_loss"][-1] - p["mlm_loss"][0]) if p["mlm_loss"] else None,
        "pseudo_perplexity": p["pseudo_perplexity"] or None,
        "delta_pseudo_perplexity": (p["pseudo_perplexity"][-1] - p["pseudo_perplexity"][0])
        if p["pseudo_perplexity"] and p["pseudo_perplexity"][0] is not None
        else None,
        "mlm_head": seq.head_origin,
        "general_corpus": cfg.general_corpus or None,
        "seconds_per_stage": p["seconds"],
        "eval_seconds_per_stage": p["eval_seconds"],
        "trainable_parameters": p["trainable_parameters"][-1],
        "layers": p["layers"],
        "fisher_estimators": next((r.estimators for r in seq.regs if r.needs_fisher), None),
        "alone_accuracy": alone,
        "learning_gap": [a - b for a, b in zip(alone, metrics["learning_accuracy"])] if alone else None,
        "wall_seconds": time.perf_counter() - seq.started,
        "models": export_models(seq) if cfg.save_models else None,
        "preflight": seq.preflight,
    }
    summary["mean_learning_gap"] = sum(summary["learning_gap"]) / len(alone) if alone else None
    write_json_atomic(seq.out / "summary.json", summary)
    return summary


def alone_accuracies(cfg: ContinualConfig, seq: Sequence) -> list[float]:
    """Each task fine-tuned alone from the start (naive, full weights, the same stage settings): the
    learning reference. Cached by everything it depends on, so methods compared on one start share it."""
    out = []
    for j, d in enumerate(seq.data):
        key = json.dumps(
            {
                "init": cfg.init,
                "arch": cfg.arch,
                "task": cfg.tasks[j],
                "seed": seq.seed,
                "lr": Cure().learning_rate(cfg),
                **{
                    f: getattr(cfg, f)
                    for f in (
                        "batch_size",
                        "epochs",
                        "max_steps",
                        "max_train_examples",
                        "max_test_examples",
                        "max_length",
                        "warmup_fraction",
                        "weight_decay",
                        "clip_norm",
                        "dropout",
                        "precision",
                        "split_seed",
                    )
                },
            },
            sort_keys=True,
        )
        path = default_cache_root() / "continual-alone" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
        if cfg.init != "random" and path.exists():
            out.append(json.loads(path.read_text())["accuracy"])
            continue
        if j == 0 and seq.cure == Cure() and not cfg.lr:
            accuracy = seq.progress["rows"][1][0]  # naive's first stage is exactly this run
        else:
            single = dataclasses.replace(
                cfg, tasks=[cfg.tasks[j]], method="naive", general_corpus="", reference=False, lr=0.0
            )
            alone = Sequence(
                single,
                Cure(),
                [d.task],
                seq.out / "alone" / f"task-{j + 1}",
                seq.seed,
                seq.show,
                tokenizer_dir=seq.preset_tokenizer_dir,
            )
            alone.data = [d]
            alone.stage(0, False, None)
            accuracy = _task_accuracy(alone.cm, 0, d, alone.pad, alone.precision)
            shutil.rmtree(alone.out / "stage-1" / "checkpoint", ignore_errors=True)  # only a resume of it would need it
        if cfg.init != "random":
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, {"accuracy": accuracy, "key": json.loads(key)})
        out.append(accuracy)
    return out


def run_continual(
    cfg: ContinualConfig,
    out: Path,
    show_progress: bool = True,
    resume: bool = False,
    halt: tuple[int, int] | None = None,
) -> dict | None:
    """Every seed's sequence into OUT/seed-N/, then OUT/summary.json and the report. With `resume`,
    finished seeds are kept and an interrupted one continues at its stage and step. `halt` = (stage,
    step) pauses there with a checkpoint, as if killed (tests, and --stop-at)."""

    cure = build_cure(cfg.method, cfg)
    names = [f"seed-{cfg.seed + s}" for s in range(cfg.seeds)]
    if resume:
        if not (out / "config.yaml").exists():
            raise UserError(f"--resume: {out} holds no continual run (no config.yaml); start without --resume")
        saved = load_continual_config(out / "config.yaml")
        if saved.tasks != cfg.tasks or saved.method != cfg.method or saved.init != cfg.init:
            raise UserError(
                f"--resume: {out} was started with tasks {','.join(saved.tasks)}, method {saved.method} and "
                f"init {saved.init}; resume with those, or start a new sequence with another --out"
            )
        changed = [
            f.name
            for f in dataclasses.fields(cfg)
            if f.name != "seeds" and getattr(cfg, f.name) != getattr(saved, f.name)
        ]
        if changed:
            raise UserError(
                f"--resume: {', '.join(changed)} differ from the run in {out}; a resumed sequence keeps its "
                "settings (drop the changed --set / flags)"
            )
        if (out / "summary.json").exists():
            if not all((out / f).exists() for f in ("report.md", "report.html")):
                # killed between the summary and the report: finish what is missing
                summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
                seeds = [json.loads((out / n / "summary.json").read_text(encoding="utf-8")) for n in summary["runs"]]
                write_report(out, summary, seeds)
                return summary
            raise UserError(
                f"{out} holds a finished continual run (summary.json); nothing to resume; use another --out"
            )
    elif any((out / n / f).exists() for n in names for f in (PROGRESS, "summary.json")):
        raise UserError(f"{out} already holds a continual run; continue it with --resume or choose another --out")
    tasks = load_tasks(cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    summaries = []
    for s, name in enumerate(names):
        seed_dir = out / name
        if (seed_dir / "summary.json").exists():
            summaries.append(json.loads((seed_dir / "summary.json").read_text(encoding="utf-8")))
            continue
        summary = run_seed(cfg, cure, tasks, seed_dir, cfg.seed + s, show_progress, resume, halt)
        if summary is None:
            return None
        summaries.append(summary)
    summary = aggregate_seeds(summaries, NUMERIC)
    summary["runs"] = names
    write_json_atomic(out / "summary.json", summary)
    write_report(out, summary, summaries)
    return summary
