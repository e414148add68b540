"""Playground latency: fill-mask answers through the page's API, and the first streamed generation step.

    python benchmarks/playground_latency.py [RUN] [--requests 100]
    python benchmarks/playground_latency.py --smoke      # seconds: does it still run? (in process, no gradio)

Without RUN, a `--preset` (mini) run on builtin:sotu is made first (two training steps: latency does not depend
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

from machine import SMOKE_DOCUMENTS, TEMP_DIR, parse_args, ratio_line


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

    request = urllib.request.Request(
        url, data=json.dumps({"data": data}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def gradio_missing() -> str:
    """Why the served half cannot run here ("" when it can): gradio and gradio_client are the [playground] extra."""
    import importlib.util

    missing = [m for m in ("gradio", "gradio_client") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed (pip install 'masklab[playground]')" if missing else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per text first (first calls allocate)")
    parser.add_argument("--generations", type=int, default=10, help="generations timed to their first streamed step")
    parser.add_argument("--out", type=Path, default=Path("/tmp/playground-latency"))
    parser.add_argument("--preset", default="mini", help="the model preset of the run made without RUN")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra `masklab pretrain --set` for the run made without RUN (repeatable)",
    )
    args = parse_args(
        parser,
        smoke=dict(
            requests=3,
            warmup=1,
            generations=2,
            out=TEMP_DIR,
            preset="tiny",
            set=[f"data.max_documents={SMOKE_DOCUMENTS}", "train.batch_size=8", "eval.max_blocks=8"],
        ),
    )
    from masklab.playground.serve import quiet_gradio

    quiet_gradio()
    run = args.run
    if run is None:
        run = args.out / args.preset
        if not (run / "checkpoint").exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "masklab.cli",
                    "pretrain",
                    "--set",
                    f"model.preset={args.preset}",
                    "--set",
                    "train.max_steps=2",
                    "--set",
                    "eval.pppl_sequences=2",
                    *[a for s in args.set for a in ("--set", s)],
                    "--out",
                    str(run),
                    "--quiet",
                ],
                check=True,
            )
    import torch
    from transformers import pipeline

    from masklab.generate.fillmask import fill_mask
    from masklab.playground.models import load_runs

    loaded = load_runs([run])[0]
    short = "The state of the [MASK] is strong, and our people are proud."
    long = (
        " ".join(["We will build a stronger economy for every family in this country."] * 30) + " The [MASK] is strong."
    )
    missing = gradio_missing()
    app = client = port = None
    if not missing:  # the page and its API; without gradio, the in-process comparison alone
        from gradio_client import Client

        from masklab.playground.app import build_app
        from masklab.playground.serve import any_free_port, launch

        port = any_free_port()
        app = build_app([loaded])
        launch(app, port=port, block=False)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    print(
        f"model: {run} ({sum(p.numel() for p in loaded.model.parameters()):,} parameters), torch threads "
        f"{torch.get_num_threads()}"
    )
    hub = pipeline("fill-mask", model=loaded.model, tokenizer=loaded.tokenizer, device="cpu")
    ratios = []
    for name, text in (("short", short), ("long", long)):
        n_tokens = len(loaded.tokenizer(text)["input_ids"])
        served = "served: skipped, " + missing
        if client is not None:
            for _ in range(args.warmup):  # warm-up: first calls allocate
                client.predict(text=text, api_name="/fill_mask")
            api = timed(lambda: client.predict(text=text, top_k=5, api_name="/fill_mask"), args.requests)
            http = timed(lambda: post(f"http://127.0.0.1:{port}/gradio_api/run/fill_mask", [text, 5, 0]), args.requests)
            served = (
                f"HTTP POST p50 {percentile(http, 0.5):.1f} ms, p95 {percentile(http, 0.95):.1f} ms; "
                f"gradio_client p50 {percentile(api, 0.5):.1f} ms, p95 {percentile(api, 0.95):.1f} ms"
            )
        for _ in range(args.warmup):
            fill_mask(loaded.model, loaded.tokenizer, text, 5, loaded.max_tokens)
            hub(text, top_k=5, tokenizer_kwargs={"truncation": True})
        ours = timed(lambda: fill_mask(loaded.model, loaded.tokenizer, text, 5, loaded.max_tokens), args.requests)
        theirs = timed(lambda: hub(text, top_k=5, tokenizer_kwargs={"truncation": True}), args.requests)
        print(
            f"fill-mask {name} ({n_tokens} tokens): {served} | "
            f"in process: masklab p50 {percentile(ours, 0.5):.1f} ms, transformers pipeline p50 "
            f"{percentile(theirs, 0.5):.1f} ms "
            f"-> {percentile(theirs, 0.5) / percentile(ours, 0.5):.2f}x"
        )
        ratios.append(
            (
                f"playground_latency fill-mask {name} ({n_tokens} tokens) p50 in process",
                percentile(ours, 0.5),
                percentile(theirs, 0.5),
            )
        )
    if client is not None:
        first = []
        for seed in range(args.generations):
            start = time.perf_counter()
            job = client.submit(
                text="The state of the union is [MASK]*8 and our people are proud.", seed=seed, api_name="/generate"
            )
            for _ in job:
                first.append((time.perf_counter() - start) * 1000)
                break
            job.result()
        print(
            f"generation (maskgit, 16 steps): first step streamed after p50 {percentile(first, 0.5):.0f} ms, max "
            f"{max(first):.0f} ms"
        )
        app.close()
    print()
    for name, ours, theirs in ratios:
        ratio_line(name, ours, theirs, "ms", baseline="transformers pipeline", lower_is_better=True)
    if missing:
        print(f"SKIP playground_latency served half (page API, HTTP POST, streamed generation): {missing}")
        if not args.smoke:
            raise SystemExit(f"playground_latency: the served figures need the playground extra: {missing}")


if __name__ == "__main__":
    main()
