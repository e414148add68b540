"""Span corruption throughput: masklab's `SpanCorruptor` vs the per-example collator a user would write, one core.

Both corrupt the same (batch, seq_length) packed blocks of `builtin:sotu` (T5 span corruption, rate 0.15,
mean span 3) on one core (torch.set_num_threads(1)), timed per batch, best of `--reps` passes over
`--batches` batches after one warm-up call. Tokens are the source block tokens corrupted.

- masklab: `SpanCorruptor.corrupt(blocks, block_ids, epoch)` on the (B, T) int array the shards hand
  over: one random stream per (seed, block, epoch) for the span count and the cut points, then the
  segmenting, sentinel placement and left-packing vectorised over the batch; returns torch tensors
  (input_ids, attention_mask, decoder_input_ids, labels) of the same shapes for every batch.
- baseline: `T5SpanCollator` (hf_baseline.py), run_t5_mlm_flax's collator ported to numpy/PyTorch: the
  example dicts (lists of ids, as a dataset yields them, built before timing) -> `random_spans_noise_mask`
  per example -> `create_sentinel_ids` / `filter_input_ids` over the batch -> torch tensors
  (input_ids, labels, decoder_input_ids).

    python benchmarks/span_corruption_throughput.py                       # 64 x 128 and 32 x 512
    python benchmarks/span_corruption_throughput.py --batches 5 --reps 1  # quick look
    python benchmarks/span_corruption_throughput.py --smoke               # seconds: does it still run?
"""

from __future__ import annotations

import argparse

import torch

from hf_baseline import T5SpanCollator
from machine import SMOKE_DOCUMENTS, best_pass_seconds, machine, parse_args, ratio_line

TARGET = 1_000_000  # tokens/s masklab's corruptor should reach on one core


def best_rate(fn, batches: list, tokens: int, reps: int) -> float:
    """Tokens per second of `fn` over `batches` of `tokens` each, best of `reps` passes (after one warm-up call)."""
    return tokens * len(batches) / best_pass_seconds(fn, batches, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="64x128,32x512", help="batch x seq_length, comma-separated")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-documents", type=int, default=0, help="0 = the whole corpus")
    args = parse_args(parser, smoke=dict(shapes="8x128,4x512", batches=2, reps=1, max_documents=SMOKE_DOCUMENTS))

    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.data.shards import packed_blocks
    from masklab.objectives.seq2seq import SpanCorruptor

    torch.set_num_threads(1)
    cfg = build_config({}, ["train.objective=seq2seq", f"data.max_documents={args.max_documents}"])
    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False, objective="seq2seq")
    tokenizer = data.tokenizer
    print(
        f"{machine()}\nspan corruption rate {cfg.seq2seq.rate}, mean span {cfg.seq2seq.mean_span:g}; "
        f"{args.batches} batches, best of {args.reps}\n"
    )
    print(
        "| batch x seq | masklab enc / dec length | baseline enc / dec length | masklab tok/s | baseline tok/s | "
        "ratio |"
    )
    print("|---|---|---|---:|---:|---:|")
    verdicts, ratios = [], []
    for shape in args.shapes.split(","):
        batch, seq = (int(x) for x in shape.split("x"))
        blocks = packed_blocks(data.shards, "train", seq, tokenizer.cls_token_id)
        ids = [range(i * batch, (i + 1) * batch) for i in range(args.batches)]
        arrays = [blocks.gather(b) for b in ids]
        examples = [[{"input_ids": row.tolist()} for row in a] for a in arrays]
        corruptor = SpanCorruptor(cfg.seq2seq, tokenizer, cfg.train.seed, seq)
        collator = T5SpanCollator(tokenizer, cfg.seq2seq.rate, cfg.seq2seq.mean_span, seed=cfg.train.seed)
        ours_out, theirs_out = corruptor.corrupt(arrays[0], ids[0]), collator(examples[0])
        pairs = list(zip(arrays, ids))
        ours = best_rate(lambda p, c=corruptor: c.corrupt(p[0], p[1], 0), pairs, batch * seq, args.reps)
        theirs = best_rate(collator, examples, batch * seq, args.reps)
        lengths = [f"{o['input_ids'].shape[1]} / {o['labels'].shape[1]}" for o in (ours_out, theirs_out)]
        print(
            f"| {batch} x {seq} | {lengths[0]} | {lengths[1]} | {ours:,.0f} | {theirs:,.0f} | **{ours / theirs:.1f}"
            "x** |"
        )
        ratios.append((f"span_corruption_throughput {batch}x{seq}", ours, theirs))
        verdicts.append(f"{batch} x {seq}: {'met' if ours >= TARGET else 'NOT met'}")
    print(f"\ntarget masklab >= {TARGET:,} tok/s on one core: " + "; ".join(verdicts))
    for name, ours, theirs in ratios:
        ratio_line(name, ours, theirs, "tok/s", baseline="baseline")


if __name__ == "__main__":
    main()
