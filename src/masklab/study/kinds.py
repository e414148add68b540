"""What one trial is: an ordinary pretraining, fine-tuning, continual or generation run.

Each kind (registry "study_run") turns `key=value` overrides into its own typed config (so a study key
that is not a config key fails before anything runs, with the kind's own message), names the key its
seed lives in, and runs into a directory, resuming from a checkpoint that is already there.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from masklab.config import load_config, parse_override, read_yaml_mapping
from masklab.continual.config import load_continual_config
from masklab.continual.methods import build_cure
from masklab.continual.run import run_continual
from masklab.errors import UserError
from masklab.evaluate.run import evaluate_checkpoint
from masklab.finetune.config import load_finetune_config
from masklab.finetune.run import run_finetune
from masklab.generate.run import GenerateConfig, generate
from masklab.models.checkpoint import find_checkpoint
from masklab.pretrain.run import pretrain
from masklab.registry import build, register

# on_eval(step, validation metrics): how a trial reports to optuna's pruner; it raises to stop the trial.
OnEval = Callable[[int, dict], None]


@dataclass
class TrialKind:
    seed_key: str
    build: Callable[[str, list[str]], Any]  # (config file or "", overrides) -> the kind's typed config
    run: Callable[..., dict]  # (config, out, on_eval, show_progress, evaluate options) -> summary
    prunable: bool = False  # whether the run reports validation metrics while it trains


def kind(name: str) -> TrialKind:
    return build("study_run", name)


def resolved(cfg) -> dict:
    """The config as plain data: what a trial's directory name hashes."""
    return dataclasses.asdict(cfg)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# -- pretrain -----------------------------------------------------------------------------------------


def _pretrain_build(config: str, overrides: list[str]):

    return load_config(config or None, overrides)


def _pretrain_run(cfg, out: Path, on_eval: OnEval | None, show_progress: bool, evaluate: dict) -> dict:

    if (out / "summary.json").exists():  # trained before the trial was interrupted in its evaluation
        summary = read_json(out / "summary.json")
    else:
        summary = pretrain(
            cfg, out, resume=find_checkpoint(out) is not None, show_progress=show_progress, on_eval=on_eval
        )
        summary.pop("is_main_process", None)
    if evaluate:
        summary["evaluation"] = evaluate_run(out, evaluate, show_progress)
    return summary


EVALUATE_OPTIONS = {
    "set": list,
    "pairs": str,
    "cloze": int,
    "downstream": str,
    "downstream_steps": int,
    "corpus": str,
    "downstream_modes": list,
}


def check_evaluate(options: dict, where: str) -> None:
    for key, value in options.items():
        if key not in EVALUATE_OPTIONS:
            raise UserError(f"{where}: unknown evaluate option {key!r}; valid: {', '.join(EVALUATE_OPTIONS)}")
        if not isinstance(value, EVALUATE_OPTIONS[key]):
            raise UserError(f"{where}: evaluate.{key} must be a {EVALUATE_OPTIONS[key].__name__} (got {value!r})")
    if not set(options.get("downstream_modes", [])) <= {"probe", "full"}:
        raise UserError(
            f"{where}: evaluate.downstream_modes lists probe and/or full (got {options['downstream_modes']})"
        )


def evaluate_run(out: Path, options: dict, show_progress: bool) -> dict:
    """`masklab evaluate` on the trial's checkpoint: e.g. every masking strategy scored on the same
    random 15% masks (evaluate.set), minimal pairs, cloze, a downstream probe."""

    metrics = evaluate_checkpoint(
        out,
        corpus=options.get("corpus"),
        overrides=list(options.get("set", [])),
        show_progress=show_progress,
        pairs=options.get("pairs"),
        cloze=options.get("cloze", 0),
        downstream=options.get("downstream"),
        downstream_steps=options.get("downstream_steps", 300),
        downstream_modes=tuple(options.get("downstream_modes", ("probe", "full"))),
    )
    return {k: v for k, v in metrics.items() if k not in ("comparable_across_objectives", "not_comparable")}


register("study_run", "pretrain")(lambda: TrialKind("train.seed", _pretrain_build, _pretrain_run, prunable=True))


# -- finetune -----------------------------------------------------------------------------------------


def _finetune_build(config: str, overrides: list[str]):

    cfg = load_finetune_config(config or None, overrides)
    return dataclasses.replace(cfg, seeds=1)  # the study owns the seeds axis: one seed per trial


def _finetune_run(cfg, out: Path, on_eval: OnEval | None, show_progress: bool, evaluate: dict) -> dict:

    if (out / "summary.json").exists():
        return read_json(out / "summary.json")
    return run_finetune(cfg, out, show_progress=show_progress, resume=(out / "config.yaml").exists(), on_eval=on_eval)


register("study_run", "finetune")(lambda: TrialKind("seed", _finetune_build, _finetune_run, prunable=True))


# -- continual ----------------------------------------------------------------------------------------


def _continual_build(config: str, overrides: list[str]):

    cfg = dataclasses.replace(load_continual_config(config or None, overrides), seeds=1)
    build_cure(cfg.method, cfg)  # an unknown or incoherent method fails now, not in a worker
    return cfg


def _continual_run(cfg, out: Path, on_eval: OnEval | None, show_progress: bool, evaluate: dict) -> dict:

    if (out / "summary.json").exists():
        return read_json(out / "summary.json")
    return run_continual(cfg, out, show_progress=show_progress, resume=(out / "config.yaml").exists())


register("study_run", "continual")(lambda: TrialKind("seed", _continual_build, _continual_run))


# -- generate -----------------------------------------------------------------------------------------


@dataclass
class GenerationTrial:
    """Samples from a checkpoint, scored by the generation quality figures (masklab generate --evaluate)."""

    checkpoint: str = ""  # a masked-LM run or checkpoint (often ${needs.NAME})
    judge: str = ""  # a causal LM that scores the samples (judge perplexity); "" = no judge
    texts: list[str] = field(default_factory=list)  # templates with [MASK] gaps; none = unconditional samples
    prompts: list[str] = field(default_factory=list)  # texts to continue by `length` tokens
    generation: dict = field(default_factory=dict)  # GenerateConfig fields (strategy, steps, temperature, n, ...)


def _generate_build(config: str, overrides: list[str]):

    values = read_yaml_mapping(config or None, "generation settings (checkpoint:, strategy:, steps: ...)")
    own = {f.name for f in dataclasses.fields(GenerationTrial)} - {"generation"}
    trial = {k: v for k, v in values.items() if k in own}
    settings = {k: v for k, v in values.items() if k not in own}
    for text in overrides:
        parts, value = parse_override(text, (1, 2), "key or settings.key", "strategy=maskgit or settings.k=2")
        if parts[0] in own and len(parts) == 1:
            trial[parts[0]] = value
        elif len(parts) == 2:
            settings.setdefault(parts[0], {})[parts[1]] = value
        else:
            settings[parts[0]] = value
    known = {f.name for f in dataclasses.fields(GenerateConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UserError(f"unknown generation key {unknown[0]!r}; valid keys: {', '.join(sorted(own | known))}")
    if not trial.get("checkpoint"):
        raise UserError("a generate trial needs checkpoint: (a masked-LM run directory, or ${needs.NAME})")
    GenerateConfig(**settings)  # validates strategy and sampling settings
    return GenerationTrial(**trial, generation=settings)


def _generate_run(cfg: GenerationTrial, out: Path, on_eval: OnEval | None, show_progress: bool, evaluate: dict) -> dict:

    if (out / "summary.json").exists():
        return read_json(out / "summary.json")
    out.mkdir(parents=True, exist_ok=True)
    report = generate(
        cfg.checkpoint,
        GenerateConfig(**cfg.generation),
        cfg.texts,
        cfg.prompts,
        evaluate=True,
        judge=cfg.judge or None,
        show_progress=False,
        save=False,
    )
    (out / "samples.json").write_text(json.dumps(report["samples"], ensure_ascii=False, indent=1), encoding="utf-8")
    return {
        **{k: v for k, v in report["evaluation"].items() if not k.endswith("_note")},
        "strategy": report["strategy"],
        "steps": report["steps"],
        "tokens_per_second": report["tokens_per_second"],
        "generated_tokens": report["generated_tokens"],
        "seconds": report["seconds"],
        "examples": [s["text"] for s in report["samples"][:3]],
    }


register("study_run", "generate")(lambda: TrialKind("seed", _generate_build, _generate_run))
