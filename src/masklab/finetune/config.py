"""The fine-tuning run configuration: one flat typed dataclass, read and overridden by the run config's
own YAML reader and `--set` parser (keys without a section: `--set lr=3e-5`, `--set objectives.mlm=0.5`).

The resolved config is saved as `config.yaml` in the run directory; values derived from it (the
learning rate a mode defaults to, steps from epochs) are computed where used and logged in summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from masklab.config import build_section, check, merge_override, parse_override, read_yaml_mapping

MODE_DEFAULT_LR = {"probe": 1e-3, "top-k": 5e-5, "full": 5e-5, "gradual": 5e-5}
FINETUNE_OBJECTIVES = ("classify", "mlm")  # what a fine-tuning run can train on: the task, and MLM batches beside it
REGULARIZERS = ("l2sp",)  # penalties a fine-tuning run can add (masklab.regularizers)


def _classify_only() -> dict[str, float]:
    return {"classify": 1.0}


@dataclass
class FinetuneConfig:
    # -- the task
    # builtin:rt-sentiment|sotu-era|sotu-party|fa-topic, a CSV/TSV/JSONL/parquet file (text + label columns) or a CoNLL
    # file (.conll/.iob/.bio: token tag per line)
    task: str = "builtin:rt-sentiment"
    validation: str = ""  # a file like `task` used as the validation split; "" = carve val_fraction out of `task`
    test: str = ""  # a file like `task` used as the test split; "" = carve test_fraction out of `task`
    text_column: str = "text"  # column holding the text in CSV / JSONL / parquet task files
    text_pair_column: str = ""  # second text for pair tasks (entailment, paraphrase); "" = single texts
    label_column: str = "label"  # column holding the label; the label set is read from the training split
    val_fraction: float = 0.1  # share of the task's examples carved out for validation (model selection)
    test_fraction: float = 0.1  # share carved out for the final test; never seen while training or selecting
    split_seed: int = 0  # separate from `seed`, so every seed and every init is tested on the same examples
    max_train_examples: int = 0  # 0 = all; else a seeded subsample (split_seed), which keeps budgeted comparisons quick
    # validation examples scored at each evaluation; 0 = all (the test split is always scored in full)
    max_eval_examples: int = 500
    # -- where training starts and what it may change
    # random | builtin:minilm | a masklab pretraining run directory | a Hugging Face checkpoint directory
    init: str = "random"
    # init=random only: a preset (tiny/mini/small/medium/base, tokenizer trained on the task) or a checkpoint spec whose
    # architecture and tokenizer get fresh weights
    arch: str = "mini"
    vocab_size: int = 8000  # tokenizer size when init=random with a preset: small tasks give few examples per token
    # probe = frozen encoder + new head; top-k = also the top k layers; gradual = ULMFiT unfreezing
    mode: Literal["probe", "top-k", "full", "gradual"] = "full"
    top_k: int = 2  # mode=top-k: encoder layers trained under the head
    # mode=gradual: steps between unfreezing the next group from the top; 0 = one epoch (ULMFiT)
    unfreeze_every: int = 0
    # layer-wise learning-rate decay: each layer trains at llrd x the rate of the one above; 1 = off, 0.8-0.95 typical
    llrd: float = 1.0
    # -- what the loss is made of
    objectives: dict[str, float] = field(
        default_factory=_classify_only
    )  # objective -> weight; add mlm (e.g. 0.5) to mix masked-LM batches in (rehearsal / domain adaptation)
    # objectives.mlm: the text its batches come from; "" = the task's own training texts; else any corpus spec
    # (builtin:sotu, a file)
    mlm_corpus: str = ""
    mlm_rate: float = 0.15  # objectives.mlm: masking rate of its batches (random tokens, 80/10/10)
    regularizers: dict[str, float] = field(
        default_factory=dict
    )  # penalty -> strength, e.g. {l2sp: 0.01}: (strength/2)·||θ - θ_start||² on the encoder (Li et al. 2018)
    # -- optimisation
    # peak learning rate; 0 = the mode's default: 1e-3 for probe (only a new head), 5e-5 otherwise (BERT's fine-tuning
    # range)
    lr: float = 0.0
    batch_size: int = 16  # examples per optimizer step
    epochs: float = 3.0  # passes over the training split (fractions allowed); ignored when max_steps is set
    max_steps: int = 0  # 0 = epochs x batches per epoch; else exactly this many optimizer steps
    warmup_fraction: float = 0.1  # linear warm-up share, then linear decay to 0 (Devlin et al.'s schedule)
    weight_decay: float = 0.01  # on weight matrices only, not biases or LayerNorm gains
    clip_norm: float = 1.0  # gradient clipping by global norm; 0 = off
    dropout: float = 0.1  # hidden and attention dropout: on in fine-tuning, where small labelled sets overfit fast
    max_length: int = 128  # tokens per example after truncation (batches are padded to their longest example)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto = bf16 autocast where the hardware runs it fast
    seed: int = 0  # head init (and random init), data order and dropout
    seeds: int = 1  # repeat the run with seeds seed, seed+1, ...; summary.json reports mean and std
    # -- what gets recorded
    log_every: int = 10  # steps between train-loss / gradient-norm lines in metrics.jsonl
    eval_every: int = 0  # steps between validation evaluations; 0 = ten per run (plus one before training)
    save_every: int = 0  # steps between checkpoints (for --resume); 0 = at every validation
    # mode=probe: run the frozen encoder once per example instead of every step (same result, far faster)
    cache_features: bool = True
    # validation examples on which the initial and fine-tuned models' layers are compared (CKA)
    analysis_examples: int = 256
    # save the fine-tuned model + tokenizer (save_pretrained, safetensors) in each seed's model/
    save_model: bool = True

    def __post_init__(self):
        check(
            0.0 <= self.val_fraction < 1.0
            and 0.0 <= self.test_fraction < 1.0
            and self.val_fraction + self.test_fraction < 1.0,
            "val_fraction and test_fraction must be in [0, 1) and leave some training data, e.g. 0.1 each",
        )
        check(
            self.max_train_examples >= 0 and self.max_eval_examples >= 0,
            "max_train_examples and max_eval_examples must be >= 0",
        )
        check(self.top_k >= 1, "top_k must be >= 1 (use mode=probe to train the head alone)")
        check(self.unfreeze_every >= 0, "unfreeze_every must be >= 0 (0 = one epoch)")
        check(0.0 < self.llrd <= 1.0, f"llrd must be in (0, 1] (got {self.llrd}), e.g. 0.9; 1 turns it off")
        check(self.lr >= 0, "lr must be >= 0 (0 = the mode's default)")
        check(
            self.batch_size >= 1 and self.max_steps >= 0 and self.epochs > 0,
            "batch_size must be >= 1, epochs > 0 and max_steps >= 0",
        )
        check(0.0 <= self.warmup_fraction < 1.0, "warmup_fraction must be in [0, 1)")
        check(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")
        check(self.max_length >= 8, "max_length must be at least 8 tokens, e.g. 128")
        check(
            self.seeds >= 1 and self.log_every >= 1 and self.eval_every >= 0,
            "seeds and log_every must be >= 1, eval_every >= 0",
        )
        check(self.vocab_size >= 100, "vocab_size must be at least 100, e.g. 8000")
        check(self.analysis_examples >= 1, "analysis_examples must be >= 1")
        check(self.save_every >= 0, "save_every must be >= 0 (0 = at every validation)")
        check(0.0 < self.mlm_rate < 1.0, f"mlm_rate must be strictly between 0 and 1 (got {self.mlm_rate}), e.g. 0.15")
        for table, valid, what in (
            (self.objectives, FINETUNE_OBJECTIVES, "objectives"),
            (self.regularizers, REGULARIZERS, "regularizers"),
        ):
            check(
                isinstance(table, dict), f"{what} must be a mapping of name: weight, e.g. {{classify: 1.0, mlm: 0.5}}"
            )
            for name, weight in table.items():
                check(name in valid, f"unknown {what[:-1]} {name!r} in {what}; choose from: {', '.join(valid)}")
                check(
                    isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight > 0,
                    f"{what}.{name} must be a number > 0 (got {weight!r}); leave the name out to turn it off",
                )
        check(
            "classify" in self.objectives,
            "objectives must include classify (the task being fine-tuned), e.g. {classify: 1.0, mlm: 0.5}",
        )

    def learning_rate(self) -> float:
        return self.lr or MODE_DEFAULT_LR[self.mode]


DICT_FIELDS = {"objectives": _classify_only, "regularizers": dict}


def build_finetune_config(raw: dict | None = None, overrides: list[str] | tuple[str, ...] = ()) -> FinetuneConfig:
    """Defaults, then `raw` (a flat mapping, e.g. from YAML), then `key=value` overrides (a `finetune.` prefix is
    allowed)."""
    values = dict(raw or {})
    for text in overrides:
        parts, value = parse_override(
            text.removeprefix("finetune."), (1, 2), "key or key.subkey", "lr=3e-5 or objectives.mlm=0.5"
        )
        if len(parts) == 2 and parts[0] in DICT_FIELDS and not isinstance(values.get(parts[0]), dict):
            values[parts[0]] = DICT_FIELDS[parts[0]]()  # objectives.mlm=0.5 adds to the default {classify: 1.0}
        merge_override(values, parts, value)
    return build_section(FinetuneConfig, values, "finetune")


def load_finetune_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> FinetuneConfig:
    raw = read_yaml_mapping(path, "fine-tuning settings, flat (task:, init:, mode: ...)")
    return build_finetune_config(raw, overrides)
