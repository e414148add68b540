"""Tokenisation throughput and peak memory on large corpora (built from the State of the Union text).

For each corpus size, writes a .txt corpus of that size (numbered copies of the speeches, so exact
deduplication keeps them), then in fresh subprocesses (so peak RSS is per job):
  1. cleaning + tokenisation into shards with 1 and with 2 tokenizer threads (RAYON_NUM_THREADS):
     MB of text per second and peak memory;
  2. 30 training steps of the tiny preset reading those shards: peak memory.
Memory must not grow with corpus size: every stage streams documents and training reads memmaps.

    python benchmarks/data_scaling.py --sizes-mb 100 1000 --workdir /tmp/masklab-scaling
    python benchmarks/data_scaling.py --smoke            # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from machine import SMOKE_DOCUMENTS, TEMP_DIR, parse_args, ratio_line

JOB = r"""
import json, resource, sys, time
from masklab.config import build_config
from masklab.data.prepare import prepare_corpus
from masklab.data.pipeline import get_tokenizer
from masklab.data.shards import build_shards
from masklab.data.tokenizer import tokenizer_digest
from masklab.data.prepare import cache_root
mode, corpus, tokenizer_dir, steps = sys.argv[1:5]
cfg = build_config({}, [f"data.corpus={corpus}", f"tokenizer.path={tokenizer_dir}", "model.preset=tiny",
                        f"train.max_steps={steps}", "train.batch_size=32", "train.eval_every=0",
                        "train.save_every=0", "eval.max_blocks=8", "eval.pppl_sequences=1"])
out = {}
if mode == "tokenise":
    start = time.perf_counter()
    prepared = prepare_corpus(cfg.data)
    out["prepare_seconds"] = time.perf_counter() - start
    tok = get_tokenizer(cfg.tokenizer, prepared, cfg.data)
    start = time.perf_counter()
    shards = build_shards(prepared, tok, tokenizer_digest(tok), cache_root(cfg.data), show_progress=False)
    out["tokenise_seconds"] = time.perf_counter() - start
    out["tokens"] = shards.meta["train_tokens"] + shards.meta["val_tokens"]
else:
    from pathlib import Path
    import tempfile
    from masklab.pretrain.run import pretrain
    with tempfile.TemporaryDirectory() as tmp:
        summary = pretrain(cfg, Path(tmp) / "run", show_progress=False)
    out["tokens_per_second"] = summary["tokens_per_second"]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def build_corpus(path: Path, size_mb: int) -> int:
    """Numbered copies of the built-in speeches until the file holds `size_mb` MB."""
    from masklab.data.sources import iter_documents

    if path.exists() and path.stat().st_size >= size_mb * 2**20:
        return path.stat().st_size
    speeches = list(iter_documents("builtin:sotu"))
    written, copy = 0, 0
    with path.open("w", encoding="utf-8") as f:
        while written < size_mb * 2**20:
            for speech in speeches:
                text = f"({copy}) {speech}\n\n"
                f.write(text)
                written += len(text.encode("utf-8"))
                if written >= size_mb * 2**20:
                    break
            copy += 1
    return written


def job(mode: str, corpus: Path, tokenizer: Path, cache: Path, threads: int, steps: int) -> dict:
    env = {
        **os.environ,
        "MASKLAB_CACHE": str(cache),
        "RAYON_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", JOB, mode, str(corpus), str(tokenizer), str(steps)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/masklab-scaling"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="tokenizer thread counts to compare")
    parser.add_argument("--train-steps", type=int, default=30, help="training steps of the memory check")
    parser.add_argument(
        "--tokenizer-documents", type=int, default=0, help="speeches the tokenizer is trained on (0 = all)"
    )
    args = parse_args(
        parser, smoke=dict(sizes_mb=[1], workdir=TEMP_DIR, train_steps=2, tokenizer_documents=SMOKE_DOCUMENTS)
    )
    args.workdir.mkdir(parents=True, exist_ok=True)

    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data

    cfg = build_config(
        {},
        [
            f"data.cache_dir={args.workdir / 'tok-cache'}",
            "tokenizer.vocab_size=16000",
            f"data.max_documents={args.tokenizer_documents}",
        ],
    )
    tokenizer_dir = args.workdir / "tokenizer"
    prepare_data(cfg.data, cfg.tokenizer, show_progress=False).tokenizer.save_pretrained(tokenizer_dir)

    print(
        "| corpus | threads | clean+dedup s | tokenise s | tokenise MB/s | tokens | peak RSS tokenising | peak RSS "
        "training |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    figures = {}
    for size in args.sizes_mb:
        corpus = args.workdir / f"sotu-{size}mb.txt"
        nbytes = build_corpus(corpus, size)
        train_rss = None
        for threads in args.threads:
            cache = args.workdir / f"cache-{size}-{threads}"
            subprocess.run(["rm", "-rf", str(cache)], check=True)
            r = job("tokenise", corpus, tokenizer_dir, cache, threads, args.train_steps)
            if train_rss is None:
                train_rss = job("train", corpus, tokenizer_dir, cache, 2, args.train_steps)["peak_rss_mb"]
            mbps = nbytes / 2**20 / r["tokenise_seconds"]
            figures[size, threads] = mbps, r["peak_rss_mb"], train_rss
            print(
                f"| {nbytes / 2**20:,.0f} MB | {threads} | {r['prepare_seconds']:.1f} | {r['tokenise_seconds']:.1f} | "
                f"{mbps:.1f} | "
                f"{r['tokens']:,} | {r['peak_rss_mb']:,.0f} MB | {train_rss:,.0f} MB |",
                flush=True,
            )
            subprocess.run(["rm", "-rf", str(cache)], check=True)
    print()
    fewest, most = min(args.threads), max(args.threads)
    if most != fewest:
        for size in args.sizes_mb:
            ratio_line(
                f"data_scaling {size} MB tokenise speed, {most} vs {fewest} tokenizer threads",
                figures[size, most][0],
                figures[size, fewest][0],
                "MB/s",
                masklab=f"{most} threads",
                baseline=f"{fewest} thread(s)",
            )
    small, large = min(args.sizes_mb), max(args.sizes_mb)
    if large != small:  # memory must not grow with the corpus: about 1x is the goal
        for what, i in (("tokenising", 1), ("training", 2)):
            ratio_line(
                f"data_scaling peak RSS {what}, {large} MB vs {small} MB corpus ({fewest} thread(s))",
                figures[large, fewest][i],
                figures[small, fewest][i],
                "MB",
                masklab=f"{large} MB",
                baseline=f"{small} MB",
            )


if __name__ == "__main__":
    main()
