"""The `generate` command: write text with a masked LM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from masklab.errors import UserError


def _required(items: List[str]) -> dict[int, str]:
    out = {}
    for item in items:
        position, sep, word = item.partition(":")
        if not sep or not position.strip().isdigit() or not word.strip():
            raise UserError(
                f"--require {item!r} is not POSITION:WORD, e.g. --require 5:freedom (token position 5 of the "
                "generated text)"
            )
        out[int(position)] = word.strip()
    return out


def _words(values: List[str]) -> list[str]:
    """Comma-separated words, or @FILE with one word per line."""
    words = []
    for value in values:
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise UserError(f"word list {path} does not exist")
            words += [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
        else:
            words += [w.strip() for w in value.split(",") if w.strip()]
    return words


def show_steps(report: dict, out) -> None:
    """Each sample's trajectory, masks dim and fresh tokens highlighted."""
    from rich.text import Text

    for i, sample in enumerate(report["samples"], 1):
        out.print(f"[bold]sample {i}[/bold]")
        previous = None
        for step, text in enumerate(sample.get("steps", []), 1):
            line = Text(f"{step:>3} ")
            old = previous.split() if previous else []
            for j, word in enumerate(text.split()):
                style = "dim" if "[MASK]" in word else ("bold green" if j >= len(old) or old[j] != word else "")
                line.append(word + " ", style=style)
            out.print(line)
            previous = text


def generate(
    checkpoint: Path = typer.Argument(..., help="A masklab mlm run directory or a Hugging Face masked-LM directory."),
    text: List[str] = typer.Option(
        [],
        "--text",
        "-t",
        help='A template: "The [MASK] of the union is [MASK]*3 ." '
        "([MASK]*2-6 draws the gap length per sample). Repeatable.",
    ),
    prompt: List[str] = typer.Option([], "--prompt", "-p", help="Continue this text by --length tokens. Repeatable."),
    length: int = typer.Option(
        32, "--length", "-l", help="Tokens to write after a prompt, or of an unconditional sample."
    ),
    strategy: str = typer.Option(
        "maskgit",
        "--strategy",
        help="maskgit (measured best balance), mask-predict, gibbs, left-to-right, random-order, diffusion.",
    ),
    steps: Optional[int] = typer.Option(
        None,
        "--steps",
        help="Unmasking steps (default: the strategy's own: maskgit 16, "
        "mask-predict 10, diffusion 32, gibbs 64, one per token for left-to-right / random-order).",
    ),
    setting: List[str] = typer.Option(
        [],
        "--setting",
        help="A strategy setting, e.g. k=2 / burn_in=0.5 (gibbs), "
        "choice_temperature=4.5 (maskgit), remasking=random / block_length=8 (diffusion).",
    ),
    temperature: float = typer.Option(1.0, "--temperature", help="0 = greedy."),
    top_k: int = typer.Option(0, "--top-k"),
    top_p: float = typer.Option(0.9, "--top-p"),
    n: int = typer.Option(1, "--n", help="Samples per template or prompt."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(16, "--batch-size"),
    ban: List[str] = typer.Option([], "--ban", help="Words never generated: comma-separated, or @FILE (one per line)."),
    allow: List[str] = typer.Option(
        [], "--allow", help="The only words generated text may use: comma-separated or @FILE."
    ),
    require: List[str] = typer.Option(
        [], "--require", help="POSITION:WORD: the word at that token position of the generated text."
    ),
    fusion: Optional[Path] = typer.Option(
        None, "--fusion", help="A causal LM with the same tokenizer (a clm run) to fuse with."
    ),
    fusion_mode: str = typer.Option(
        "poe",
        "--fusion-mode",
        help="poe: mix log-probabilities each step; rerank: the causal LM "
        "proposes --candidates, the masked LM rescores them.",
    ),
    fusion_weight: float = typer.Option(
        0.5, "--fusion-weight", help="The causal LM's weight (0 = masked LM alone, 1 = causal LM alone)."
    ),
    candidates: int = typer.Option(8, "--candidates", help="rerank: proposals per sample."),
    evaluate: bool = typer.Option(
        False,
        "--evaluate",
        help="Quality figures (entropy, distinct-n, repetition, self-BLEU, "
        "judge perplexity with --judge); merged into RUN/evaluation.json.",
    ),
    judge: Optional[Path] = typer.Option(
        None, "--judge", help="A causal LM that scores the samples (judge perplexity)."
    ),
    steps_view: bool = typer.Option(
        False, "--show-steps", help="Print every step (masks filling in); with --json, include them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the samples."),
):
    """Write text with a masked LM by iterative unmasking: templates (inpainting), continuations of a
    prompt and unconditional samples, with constraints and optional fusion with a causal LM."""
    from masklab.cli.common import console, print_summary
    from masklab.generate.run import GenerateConfig
    from masklab.generate.run import generate as run
    from masklab.generate.settings import parse_settings

    if fusion_mode not in ("poe", "rerank"):
        raise UserError(f"--fusion-mode must be poe or rerank (got {fusion_mode!r})")
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be >= 1 (got {steps}); leave it out for the strategy's default")
    cfg = GenerateConfig(
        strategy=strategy,
        steps=steps or 0,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        length=length,
        n=n,
        seed=seed,
        batch_size=batch_size,
        settings=parse_settings(setting),
        banned=_words(ban),
        allowed=_words(allow) if allow else None,
        required=_required(require),
        fusion=str(fusion) if fusion else "",
        fusion_mode=fusion_mode,
        fusion_weight=fusion_weight,
        candidates=candidates,
    )
    report = run(
        checkpoint,
        cfg,
        text,
        prompt,
        record=steps_view,
        evaluate=evaluate,
        judge=str(judge) if judge else None,
        show_progress=not as_json,
    )
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    out = console()
    if steps_view:
        show_steps(report, out)
    for sample in report["samples"]:
        out.print(sample["text"], markup=False, highlight=False)
    out.print(
        f"[dim]{report['generated_tokens']:,} tokens in {report['seconds']:.2f} s ({report['tokens_per_second']:,.0f} "
        "tokens/s), "
        f"{report['strategy']}, {report['steps']} steps[/dim]"
    )
    if "evaluation" in report:
        print_summary({k: v for k, v in report["evaluation"].items() if not k.endswith("_note")}, "generation quality")
        if "judge_perplexity_note" in report["evaluation"]:
            out.print(f"[dim]{report['evaluation']['judge_perplexity_note']}[/dim]")


def register(app: typer.Typer) -> None:
    app.command()(generate)
