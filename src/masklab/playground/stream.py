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

from masklab.generate.run import GenerateConfig

DONE = object()


@dataclass
class Step:
    step: int  # 1-based
    steps: int
    texts: list[str]  # one per sample


def stream_generate(run, cfg: GenerateConfig, template: str = "", prompt: str = "") -> Iterator[Step | dict]:
    """Yield a Step after every unmasking step, then generate()'s report (samples, speed); errors re-raise here."""
    from masklab.generate.run import generate

    run.require_masked("generation")
    events: queue.Queue = queue.Queue()

    def on_step(step, steps, texts):
        events.put(Step(step + 1, steps, list(texts)))

    def work():
        try:
            report = generate(run.checkpoint, cfg, texts=[template] if template else [], prompts=[] if template else [prompt],
                              show_progress=False, save=False, loaded=(run.model, run.tokenizer), on_step=on_step)
            events.put(report)
        except BaseException as exc:  # handed to the caller's thread, which shows it
            events.put(exc)
        events.put(DONE)

    threading.Thread(target=work, name="masklab-generate", daemon=True).start()
    while (event := events.get()) is not DONE:
        if isinstance(event, BaseException):
            raise event
        yield event
