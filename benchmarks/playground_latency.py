"""Playground latency: fill-mask answers through the page's API, and the first streamed generation step.

    python benchmarks/playground_latency.py [RUN] [--requests 100]

Without RUN, a mini-preset run on builtin:sotu is made first (two training steps: latency does not depend
on how well a model is trained). The app is served on a free loopback port and called as scripts call it:
p50 / p95 over --requests fill-mask requests (a short sentence and a ~400-token passage) by a plain HTTP
POST (curl, requests) and through gradio_client (which adds its own event-stream round trips), and the
time from submitting a generation (gradio_client) to receiving its first step. Side by side in the
same process: masklab's fill_mask and a transformers fill-mask pipeline on the same model and texts
(what a user would otherwise call), and their ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def post(url: str, data: list) -> bytes:
    """One call of an unqueued endpoint, as curl or requests would make it."""
    import json
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps({"data": data}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("/tmp/playground-latency"))
    args = parser.parse_args()
    from masklab.playground.serve import quiet_gradio

    quiet_gradio()
    run = args.run
    if run is None:
        run = args.out / "mini"
        if not (run / "checkpoint").exists():
            subprocess.run([sys.executable, "-m", "masklab.cli", "pretrain", "--set", "model.preset=mini", "--set", "train.max_steps=2",
                            "--set", "eval.pppl_sequences=2", "--out", str(run), "--quiet"], check=True)
    import torch
    from gradio_client import Client
    from transformers import pipeline

    from masklab.evaluate.masked import fill_mask
    from masklab.playground.app import build_app
    from masklab.playground.models import load_runs
    from masklab.playground.serve import any_free_port, launch

    loaded = load_runs([run])[0]
    short = "The state of the [MASK] is strong, and our people are proud."
    long = " ".join(["We will build a stronger economy for every family in this country."] * 30) + " The [MASK] is strong."
    port = any_free_port()
    app = build_app([loaded])
    launch(app, port=port, block=False)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    print(f"model: {run} ({sum(p.numel() for p in loaded.model.parameters()):,} parameters), torch threads {torch.get_num_threads()}")
    hub = pipeline("fill-mask", model=loaded.model, tokenizer=loaded.tokenizer, device="cpu")
    for name, text in (("short", short), ("long", long)):
        n_tokens = len(loaded.tokenizer(text)["input_ids"])
        for _ in range(5):  # warm-up: first calls allocate
            client.predict(text=text, api_name="/fill_mask")
        api = timed(lambda: client.predict(text=text, top_k=5, api_name="/fill_mask"), args.requests)
        http = timed(lambda: post(f"http://127.0.0.1:{port}/gradio_api/run/fill_mask", [text, 5, 0]), args.requests)
        ours = timed(lambda: fill_mask(loaded.model, loaded.tokenizer, text, 5, loaded.max_tokens), args.requests)
        theirs = timed(lambda: hub(text, top_k=5, tokenizer_kwargs={"truncation": True}), args.requests)
        print(f"fill-mask {name} ({n_tokens} tokens): HTTP POST p50 {percentile(http, .5):.1f} ms, p95 {percentile(http, .95):.1f} ms; "
              f"gradio_client p50 {percentile(api, .5):.1f} ms, p95 {percentile(api, .95):.1f} ms | "
              f"in process: masklab p50 {percentile(ours, .5):.1f} ms, transformers pipeline p50 {percentile(theirs, .5):.1f} ms "
              f"-> {percentile(theirs, .5) / percentile(ours, .5):.2f}x")
    first = []
    for seed in range(10):
        start = time.perf_counter()
        job = client.submit(text="The state of the union is [MASK]*8 and our people are proud.", seed=seed, api_name="/generate")
        for _ in job:
            first.append((time.perf_counter() - start) * 1000)
            break
        job.result()
    print(f"generation (maskgit, 16 steps): first step streamed after p50 {percentile(first, .5):.0f} ms, max {max(first):.0f} ms")
    app.close()


if __name__ == "__main__":
    main()
