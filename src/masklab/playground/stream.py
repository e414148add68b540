"""Generation whose steps arrive while it runs: each step's texts, [MASK] where still masked, then the result.

`generate()` runs in a worker thread with an `on_step` callback that puts every step on a queue; the
caller iterates over the queue, so a page shows the first step as soon as the model has made it, not
after the last one.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator

from masklab.errors import UserError
from masklab.generate.run import GenerateConfig, generate

DONE = object()


@dataclass
class Step:
    step: int  # 1-based
    steps: int
    texts: list[str]  # one per sample


def fit_prompt(run, prompt: str, length: int) -> tuple[str, str]:
    """(prompt, notice): a prompt too long for the model with `length` new tokens keeps its end (what a
    continuation depends on), with a notice saying how much was cut."""
    ids = run.tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
    budget = run.max_tokens - 2 - length
    if budget < 1:
        raise UserError(
            f"length {length} leaves no room for a prompt: {run.name} reads {run.max_tokens} tokens; lower the length"
        )
    if len(ids) <= budget:
        return prompt, ""
    return (
        run.tokenizer.decode(ids[-budget:]),
        f"the prompt is {len(ids):,} tokens; with {length} new ones the model reads its last {budget:,}, the rest was "
        "cut",
    )


def stream_generate(run, cfg: GenerateConfig, template: str = "", prompt: str = "") -> Iterator[Step | dict]:
    """Yield a Step after every unmasking step, then generate()'s report (samples, speed, and a "notice" when
    the prompt was cut to fit); errors re-raise here."""

    run.require_masked("generation")
    notice = ""
    if prompt and not template:
        prompt, notice = fit_prompt(run, prompt, cfg.length)
    events: queue.Queue = queue.Queue()

    def on_step(step, steps, texts):
        events.put(Step(step + 1, steps, list(texts)))

    def work():
        try:
            report = generate(
                run.checkpoint,
                cfg,
                texts=[template] if template else [],
                prompts=[] if template else [prompt],
                show_progress=False,
                save=False,
                loaded=(run.model, run.tokenizer),
                on_step=on_step,
            )
            events.put({**report, "notice": notice})
        except BaseException as exc:  # handed to the caller's thread, which shows it
            events.put(exc)
        events.put(DONE)

    threading.Thread(target=work, name="masklab-generate", daemon=True).start()
    while (event := events.get()) is not DONE:
        if isinstance(event, BaseException):
            raise event
        yield event
