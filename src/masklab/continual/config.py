"""The continual-learning run configuration: one flat typed dataclass, like fine-tuning's (`--set key=value`).

A sequence trains the tasks in order, each stage a fine-tuning run of the one loop; `method` names the
cure (methods.py), and each cure has its strength setting here. Resolved settings go to DIR/config.yaml;
a resumed sequence must have the same tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from masklab.config import build_section, check, parse_override, read_yaml_mapping

# Named sequences for `--tasks builtin:seq-NAME`; three English tasks on different text and label sets.
SEQUENCES = {
    "seq-en": ["builtin:rt-sentiment", "builtin:sotu-era", "builtin:sotu-party"],
}


def _default_tasks() -> list[str]:
    return list(SEQUENCES["seq-en"])


@dataclass
class ContinualConfig:
    # -- the sequence
    tasks: list[str] = field(
        default_factory=_default_tasks
    )  # in training order; anything finetune --task accepts, or builtin:seq-en
    # random | builtin:minilm | a masklab pretraining run | a Hugging Face checkpoint directory
    init: str = "builtin:minilm"
    arch: str = "mini"  # init=random only: a preset or a checkpoint whose architecture gets fresh weights
    method: str = "naive"  # a cure (methods.py), or several joined by + (ewc+replay, lora+replay)
    # -- each stage's fine-tuning
    lr: float = 0.0  # 0 = the method's default: 1e-4 for the full weights, 2e-3 LoRA, 3e-3 IA3, 3e-2 prompt/prefix
    batch_size: int = 16
    epochs: float = 1.0  # passes over a task's training examples per stage (ignored when max_steps is set)
    max_steps: int = 0  # optimizer steps per stage; 0 = epochs x batches per epoch
    max_train_examples: int = 2000  # seeded subsample per task: keeps a three-task sequence to minutes on a laptop CPU
    max_test_examples: int = 500  # test examples per task scored after each stage (same examples every stage); 0 = all
    max_length: int = 64  # tokens per example: the built-in tasks' passages are mostly shorter
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    dropout: float = 0.1
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    seed: int = 0  # heads, data order, dropout, replay memory
    seeds: int = 1  # repeat with seeds seed, seed+1, ...; summary.json holds means and `_std` keys
    split_seed: int = 0  # task splits: the same test examples for every seed and method
    # -- the cures' strengths
    # EWC: lambda in (lambda/2)·Σ F (theta - theta*)^2, at the strength measured to cut forgetting (docs/forgetting.md)
    ewc_lambda: float = 1e5
    # auto: exact over labels for sequence tasks
    ewc_fisher: Literal["auto", "exact", "sampled", "empirical", "batch"] = "auto"
    ewc_online: bool = False  # one running Fisher (gamma·F + F_new) instead of one per task
    ewc_gamma: float = 1.0  # online EWC: decay of the old Fisher
    # held-out (validation) examples the Fisher is estimated on: 200 made EWC 1.7x naive per stage
    fisher_examples: int = 100
    l2sp: float = 0.01  # L2-SP: alpha in (alpha/2)·||theta - theta_before_the_task||^2
    recadam: float = 5000.0  # RecAdam: the pull coefficient gamma at lr 2e-5 (the paper's), scaled by 2e-5/lr
    recadam_k: float = 0.1  # RecAdam: annealing sharpness per step
    recadam_t0: float = 0.25  # RecAdam: where the annealing is half-way, as a share of the stage's steps
    replay_fraction: float = 0.01  # replay: memory per task as a share of its training examples...
    replay_min: int = 200  # ...but at least this many (reservoir-sampled)
    replay_batch: int = 4  # replay: examples of each earlier task mixed into every step
    mlm_weight: float = 0.5  # mlm-mix: weight of the masked-LM batches of general text beside the task
    lora_r: int = 8  # lora: rank
    lora_alpha: float = 0.0  # lora: scaling numerator; 0 = 2 x rank
    lora_dropout: float = 0.1
    target_modules: str = ""  # lora / ia3: comma-separated module names; "" = peft's defaults for the architecture
    virtual_tokens: int = 20  # prompt / prefix: virtual tokens
    # peft methods: one adapter trained on every task, or one per task
    adapter: Literal["shared", "per-task"] = "shared"
    freeze_layers: int = 3  # freeze: the embeddings and this many bottom encoder layers stay fixed
    # -- what gets measured
    # general text for the masked-LM loss and pseudo-perplexity (Persian: builtin:fa-chat)
    general_corpus: str = "builtin:en-chat"
    general_blocks: int = 256  # held-out general-text sequences scored with fixed masks after each stage
    pll_sentences: int = 32  # general-text sentences whose pseudo-log-likelihood is computed after each stage
    mlm_head_steps: int = 300  # a start without an MLM head gets one fitted on its frozen encoder for this many steps
    probe_examples: int = 1000  # training examples a linear probe is fitted on (stage 0, future tasks, probe recovery)
    # also fine-tune each task alone from the start: the learning gap (cached, shared by methods)
    reference: bool = True
    # each task's final model as a transformers checkpoint in seed-N/models/TASK_NUMBER (LoRA / IA3 merged); off by
    # default: a full copy per task and seed
    save_models: bool = False

    def __post_init__(self):
        check(
            isinstance(self.tasks, list) and all(isinstance(t, str) and t for t in self.tasks),
            "tasks must be a list of task specs, e.g. tasks=builtin:rt-sentiment,builtin:sotu-era",
        )
        check(
            self.lr >= 0 and self.batch_size >= 1 and self.epochs > 0 and self.max_steps >= 0,
            "lr must be >= 0, batch_size >= 1, epochs > 0 and max_steps >= 0",
        )
        check(
            self.max_train_examples >= 0 and self.max_test_examples >= 0,
            "max_train_examples and max_test_examples must be >= 0",
        )
        check(self.max_length >= 8, "max_length must be at least 8 tokens, e.g. 64")
        check(0 <= self.warmup_fraction < 1 and 0 <= self.dropout < 1, "warmup_fraction and dropout must be in [0, 1)")
        check(self.seeds >= 1, "seeds must be >= 1")
        for name in ("ewc_lambda", "l2sp", "recadam", "mlm_weight", "ewc_gamma", "recadam_k"):
            value = getattr(self, name)
            check(value >= 0, f"{name} must be >= 0 (got {value:g}); it is a strength, 0 turns the cure off")
        check(0 <= self.recadam_t0 <= 1, "recadam_t0 must be in [0, 1] (a share of the stage's steps)")
        check(
            0 < self.replay_fraction <= 1 and self.replay_min >= 1 and self.replay_batch >= 1,
            "replay_fraction must be in (0, 1], replay_min and replay_batch >= 1",
        )
        check(
            self.lora_r >= 1 and self.lora_alpha >= 0 and 0 <= self.lora_dropout < 1,
            "lora_r must be >= 1, lora_alpha >= 0 (0 = 2 x rank) and lora_dropout in [0, 1)",
        )
        check(self.virtual_tokens >= 1, "virtual_tokens must be >= 1")
        check(self.freeze_layers >= 0, "freeze_layers must be >= 0")
        check(
            self.fisher_examples >= 1
            and self.general_blocks >= 1
            and self.pll_sentences >= 0
            and self.mlm_head_steps >= 0
            and self.probe_examples >= 1,
            "fisher_examples, general_blocks and probe_examples must be >= 1; pll_sentences and mlm_head_steps >= 0",
        )


def expand_tasks(specs: list[str]) -> list[str]:
    """builtin:seq-NAME becomes its tasks; other specs are kept as given."""
    out: list[str] = []
    for spec in specs:
        name = spec.removeprefix("builtin:")
        out += SEQUENCES[name] if spec.startswith("builtin:") and name in SEQUENCES else [spec]
    return out


def _task_list(value) -> list[str]:
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",") if t.strip()]
    return expand_tasks(list(value))


def build_continual_config(raw: dict | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ContinualConfig:
    """Defaults, then `raw` (a flat mapping, e.g. from YAML), then `key=value` overrides."""
    values = dict(raw or {})
    for text in overrides:
        parts, value = parse_override(text.removeprefix("continual."), (1, 1), "key", "ewc_lambda=100")
        values[parts[0]] = value
    if "tasks" in values:
        values["tasks"] = _task_list(values["tasks"])
    return build_section(ContinualConfig, values, "continual")


def load_continual_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ContinualConfig:
    return build_continual_config(
        read_yaml_mapping(path, "continual-learning settings, flat (tasks:, method: ...)"), overrides
    )
