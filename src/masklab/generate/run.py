"""`masklab generate`: samples from a masked LM (templates, continuations, unconditional), with
constraints, fusion with a causal LM, step-by-step trajectories and quality figures.

`generate(checkpoint, cfg, ...)` returns one JSON-ready mapping: the settings, every sample (its text,
the text of each gap, whether the given text is intact, and with `record` the text after each step),
the speed, and with `evaluate` the quality figures (quality.py), merged into RUN/evaluation.json under
"generation" so `masklab compare` shows them.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from masklab.errors import UserError
from masklab.evaluate.run import save_evaluation
from masklab.generate import strategies  # noqa: F401  (registers the strategies)
from masklab.generate.constraints import Constraints, Rules
from masklab.generate.fusion import propose, rerank
from masklab.generate.predictors import CausalPredictor, FusedPredictor, MaskedPredictor, check_same_vocabulary
from masklab.generate.quality import quality
from masklab.generate.template import continuation_template, given_text_intact, layout, parse_template, render
from masklab.generate.unmask import default_steps, iterative_unmask, resolve_strategy
from masklab.models.checkpoint import load_language_model, load_masked_lm
from masklab.registry import names

REPAIR_ROUNDS = 50  # word-rule repairs before giving up; one round almost always suffices


@dataclass
class GenerateConfig:
    # the measured best balance of fluency and variety (README: Generating text with an MLM)
    strategy: str = "maskgit"
    # 0 = the strategy's default (maskgit 16, mask-predict 10, diffusion 32, gibbs 64, one per token for left-to-right /
    # random-order)
    steps: int = 0
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = no top-k cut
    top_p: float = 0.9  # nucleus sampling; 1 = the whole distribution
    length: int = 32  # tokens to write after a prompt, or of an unconditional sample (templates set their own)
    n: int = 1  # samples per prompt or template
    seed: int = 0  # samples are a function of the seed, the settings and the batch size
    batch_size: int = 16  # rows filled at once
    settings: dict = field(default_factory=dict)  # the strategy's own settings, e.g. {"k": 2, "burn_in": 0.5} for gibbs
    banned: list[str] = field(default_factory=list)  # words that never appear in generated text
    allowed: list[str] | None = None  # the only words generated text may use
    required: dict[int, str] = field(default_factory=dict)  # token position in the generated part -> word placed there
    fusion: str = ""  # a causal LM checkpoint with the same tokenizer: product of experts or proposer
    # poe: mix log-probabilities at each step; rerank: CLM proposes, MLM rescores
    fusion_mode: Literal["poe", "rerank"] = "poe"
    fusion_weight: float = 0.5  # the causal LM's weight: 0 = the masked LM alone, 1 = the causal LM alone
    candidates: int = 8  # rerank: proposals per sample
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self):
        if self.strategy not in names("unmask"):
            raise UserError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(names('unmask'))}")
        if self.steps < 0:
            raise UserError(f"--steps must be >= 1 (got {self.steps}); 0 takes the strategy's default")
        if self.n < 1 or self.batch_size < 1:
            raise UserError("--n and --batch-size must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise UserError("sampling needs temperature >= 0, 0 < top_p <= 1 and top_k >= 0")
        if self.fusion_mode == "rerank" and self.candidates < self.n:
            raise UserError(
                f"rerank keeps the best --n {self.n} of --candidates {self.candidates}; give at least as many "
                "candidates"
            )


def load_masked(path):
    """The masked LM to unmask with; a clear error for a causal or seq2seq checkpoint."""

    return load_masked_lm(
        path,
        "iterative unmasking needs a masked LM. Pass an mlm run (use a causal LM as --fusion, "
        "or sample it with `masklab evaluate --generate`)",
    )


def load_causal(path, what: str):

    model, tokenizer, family = load_language_model(path)
    if family != "clm":
        raise UserError(f"{what} {path} is not a causal LM ({family}); pass a clm (or hybrid) run")
    return model, tokenizer


@dataclass
class Request:
    label: str  # what the user asked for: the template, the prompt, or "" (unconditional)
    parts: list


def requests(texts: list[str], prompts: list[str], cfg: GenerateConfig, tokenizer) -> list[Request]:
    if texts and (prompts or cfg.required):
        raise UserError("give either --text templates or --prompt / --require, not both")
    if texts:
        return [Request(t, parse_template(t, tokenizer.mask_token)) for t in texts]
    return [
        Request(p, parse_template(continuation_template(p, cfg.length, cfg.required, tokenizer), tokenizer.mask_token))
        for p in (prompts or [""])
    ]


def _batch(rows, tokenizer, device):
    T = max(len(r.ids) for r in rows)
    pad = tokenizer.pad_token_id

    def tensor(values, fill, dtype):
        return torch.tensor([v + [fill] * (T - len(v)) for v in values], dtype=dtype, device=device)

    return (
        tensor([r.ids for r in rows], pad, torch.long),
        tensor([r.editable for r in rows], False, torch.bool),
        tensor([r.word_start for r in rows], False, torch.bool),
        tensor([[1] * len(r.ids) for r in rows], 0, torch.long),
    )


def _repair(predictor, rules: Rules, ids, attention, word_start, rows, mask_token_id, generator):
    """Redraw words that break a word rule until none does (constraints.py)."""
    forbid = None
    for _ in range(REPAIR_ROUNDS):
        bad = [rules.violations(ids[b, : len(r.ids)].tolist(), r.editable) for b, r in enumerate(rows)]
        if not any(bad):
            return ids
        redo = torch.zeros_like(word_start)
        if forbid is None:
            forbid = torch.zeros(*ids.shape, len(rules.forbidden), dtype=torch.bool, device=ids.device)
        for b, words in enumerate(bad):
            for word in words:
                redo[b, word] = True
                forbid[b, word, ids[b, word]] = True  # this spelling may not come back at this place
        padded = torch.cat([forbid, torch.zeros_like(forbid[:, :1])], dim=1)

        def no_repeat(logp, rows, positions):
            return logp.masked_fill(padded[rows, positions], float("-inf"))

        ids = iterative_unmask(
            predictor,
            ids,
            redo,
            "mask-predict",
            1,
            1.0,
            0,
            1.0,
            generator,
            mask_token_id=mask_token_id,
            attention_mask=attention,
            forbidden=rules.forbidden,
            processors=[rules.processor(word_start), no_repeat],
        ).ids
    raise UserError(f"could not meet the word constraints after {REPAIR_ROUNDS} redraws; allow more words or ban fewer")


def _trajectory_texts(result, b: int, row, tokenizer) -> list[str]:
    return [render(row, step[b, : len(row.ids)].tolist(), tokenizer, keep_masks=True)[0] for step in result.trajectory]


def generate(
    checkpoint,
    cfg: GenerateConfig,
    texts: list[str] = (),
    prompts: list[str] = (),
    record: bool = False,
    evaluate: bool = False,
    judge: str | None = None,
    show_progress: bool = True,
    save: bool = True,
    loaded: tuple | None = None,
    on_step=None,
) -> dict:
    """The samples and their speed; with `evaluate` the quality figures, merged into the run's evaluation.json
    unless `save` is off (a study's trials sample one checkpoint concurrently and keep their own).

    `loaded` = (model, tokenizer) already loaded from `checkpoint` (the playground keeps its models);
    `on_step(step, steps, texts)` sees each batch's texts after every step, [MASK] where still masked."""

    model, tokenizer = loaded or load_masked(checkpoint)
    device = next(model.parameters()).device
    strategy = resolve_strategy(cfg.strategy, cfg.settings)
    rules = Rules(Constraints(list(cfg.banned), cfg.allowed), tokenizer)
    reqs = requests(list(texts), list(prompts), cfg, tokenizer)
    rules.check_given([p for r in reqs for p in r.parts if isinstance(p, str)], list(cfg.required.values()))
    predictor = MaskedPredictor(model, cfg.precision)
    causal = None
    if cfg.fusion:
        causal, causal_tokenizer = load_causal(cfg.fusion, "the fusion partner")
        check_same_vocabulary(tokenizer, causal_tokenizer, f"the fusion partner {cfg.fusion}")
        if cfg.fusion_mode == "poe":
            predictor = FusedPredictor(predictor, CausalPredictor(causal, cfg.precision), cfg.fusion_weight)
    rng = random.Random(cfg.seed)
    rows = [(q, layout(req.parts, tokenizer, rng)) for q, req in enumerate(reqs) for _ in range(cfg.n)]
    limit = getattr(model.config, "max_position_embeddings", None)
    for q, row in rows:
        if limit and len(row.ids) > limit:
            raise UserError(
                f"the request {reqs[q].label[:40]!r}... is {len(row.ids):,} tokens with its gaps; the model reads "
                f"at most {limit:,}: shorten the text, the gaps or --length"
            )
    samples, generated, started = [], [], time.perf_counter()
    steps_used = None

    bar = tqdm(
        total=len(rows),
        desc=f"generate ({cfg.strategy})",
        unit="sample",
        disable=not show_progress or len(rows) <= cfg.batch_size,
    )
    rerank = bool(cfg.fusion) and cfg.fusion_mode == "rerank"
    if rerank:
        if texts or cfg.required or rules.word_rules:
            raise UserError(
                "rerank fusion continues a prompt left to right; templates, --require and word constraints "
                "need --fusion-mode poe"
            )
        samples, generated = _rerank_samples(model, causal, tokenizer, reqs, cfg)
        bar.update(len(rows))
    for start in [] if rerank else range(0, len(rows), cfg.batch_size):
        chunk = rows[start : start + cfg.batch_size]
        ids, editable, word_start, attention = _batch([r for _, r in chunk], tokenizer, device)
        generator = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + start)
        watch = None
        if on_step is not None:

            def watch(step, steps, shown, chunk=chunk):
                on_step(
                    step,
                    steps,
                    [
                        render(row, shown[b, : len(row.ids)].tolist(), tokenizer, keep_masks=True)[0]
                        for b, (_, row) in enumerate(chunk)
                    ],
                )

        result = iterative_unmask(
            predictor,
            ids,
            editable,
            strategy,
            cfg.steps,
            cfg.temperature,
            cfg.top_k,
            cfg.top_p,
            generator,
            mask_token_id=tokenizer.mask_token_id,
            attention_mask=attention,
            forbidden=rules.forbidden,
            processors=[rules.processor(word_start)],
            record=record,
            on_step=watch,
        )
        steps_used = result.steps
        out = result.ids
        if rules.word_rules:
            out = _repair(
                predictor, rules, out, attention, word_start, [r for _, r in chunk], tokenizer.mask_token_id, generator
            )
        for b, (q, row) in enumerate(chunk):
            row_ids = out[b, : len(row.ids)].tolist()
            text, gaps = render(row, row_ids, tokenizer)
            new = [t for t, e in zip(row_ids, row.editable) if e]
            generated.append(new)
            sample = {
                "request": reqs[q].label,
                "text": text,
                "gaps": gaps,
                "given_text_intact": given_text_intact(row, text, gaps)
                and all(a == c for a, c, e in zip(row_ids, row.ids, row.editable) if not e),
            }
            if record:
                sample["steps"] = _trajectory_texts(result, b, row, tokenizer)
            samples.append(sample)
        bar.update(len(chunk))
    bar.close()
    seconds = time.perf_counter() - started
    n_tokens = sum(len(g) for g in generated)
    report = {
        "checkpoint": str(checkpoint),
        "strategy": cfg.strategy,
        "steps": steps_used if steps_used is not None else (cfg.steps or default_steps(strategy, cfg.length)),
        "config": asdict(cfg),
        "samples": samples,
        "seconds": seconds,
        "generated_tokens": n_tokens,
        "tokens_per_second": n_tokens / max(seconds, 1e-9),
    }
    if evaluate:
        judge_model = judge_tokenizer = None
        if judge:
            judge_model, judge_tokenizer = load_causal(judge, "the judge")
        report["evaluation"] = quality(
            generated,
            [s["text"] for s in samples],
            judge_model,
            judge_tokenizer,
            [s["given_text_intact"] for s in samples],
            cfg.precision,
        )
        if not judge:
            report["evaluation"]["judge_perplexity_note"] = (
                "no --judge given: pass a causal LM (e.g. a larger masklab clm "
                "run on the same corpus) for judge perplexity"
            )
        if save:
            save_generation(checkpoint, report)
    return report


def _rerank_samples(masked, causal, tokenizer, reqs, cfg: GenerateConfig):

    samples, generated = [], []
    for q, req in enumerate(reqs):
        prompt = "".join(p for p in req.parts if isinstance(p, str))
        proposals = propose(
            causal, tokenizer, prompt, cfg.length, cfg.candidates, cfg.top_p, cfg.temperature, cfg.seed + q
        )
        for tokens, pll, ll in rerank(
            masked, causal, tokenizer, prompt, proposals, cfg.n, cfg.fusion_weight, cfg.precision
        ):
            gap = tokenizer.decode(tokens).strip()
            text = (prompt + gap) if not prompt or prompt[-1:].isspace() else prompt + " " + gap
            samples.append(
                {
                    "request": req.label,
                    "text": text,
                    "gaps": [gap],
                    "given_text_intact": text.startswith(prompt),
                    "pseudo_log_likelihood": pll,
                    "causal_log_likelihood": ll,
                }
            )
            generated.append(tokens)
    return samples, generated


def save_generation(checkpoint, report: dict) -> None:
    """Merge the quality figures into RUN/evaluation.json under generation.STRATEGY@STEPS (run directories only)."""

    run = Path(checkpoint)
    if not (run / "checkpoint").is_dir():
        return
    key = f"{report['strategy']}@{report['steps']}" + (
        f"+{report['config']['fusion_mode']}" if report["config"]["fusion"] else ""
    )
    entry = {
        **report["evaluation"],
        "tokens_per_second": report["tokens_per_second"],
        "examples": [s["text"] for s in report["samples"][:3]],
    }
    previous = {}
    target = run / "evaluation.json"
    if target.exists():
        previous = json.loads(target.read_text(encoding="utf-8")).get("generation", {})
    save_evaluation(run, {"generation": {**previous, key: entry}})
