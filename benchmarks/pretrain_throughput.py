"""Pretraining throughput: masklab vs the Hugging Face baseline, side by side in one run.

Both sides train the same BERT preset (vocabulary 30,522 as in bert-base) on the same packed blocks of
`builtin:sotu`, with the same sequence length, batch size, masking rate and precision.

- masklab: the real training loop (`masklab.train.train` through `masklab.pretrain.run.train_pretraining`) on
  BERT (named explicitly: `model.architecture=bert`) with masklab's speed defaults: sparse prediction,
  exact-count masking, no pretraining dropout, fused AdamW. Tokens/s per step come from metrics.jsonl.
- Hugging Face baseline (the `run_mlm` path, see hf_baseline.py): `BertForMaskedLM` with its default
  config, `DataCollatorForLanguageModeling`, `torch.optim.AdamW`, clipping, a linear schedule.

Per side: warm-up steps are dropped, then the median step time over the measured steps, repeated
`--reps` times (median of medians). Model FLOPs utilisation is reported against the matmul peak of the
same precision, measured in the same run (masklab's FLOPs count the head at masked positions only:
the work that is needed; the baseline's count the dense head it runs).

    python benchmarks/pretrain_throughput.py                  # mini and small, fp32 and bf16
    python benchmarks/pretrain_throughput.py --presets mini --steps 6 --reps 1   # quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hf_baseline import HFBaseline

VOCAB = 30522


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def model_flops_per_step(layers: int, hidden: int, inter: int, batch: int, seq: int, predicted: float,
                         sparse_final_layer: bool = False) -> float:
    """Training FLOPs (3 x forward) one side performs per step: encoder matmuls, attention scores, and
    the vocabulary head at `predicted` positions (all of them for a dense head, ~15% for sparse).
    With `sparse_final_layer` the last layer projects keys/values for every token but computes
    queries, attention, output projection and feed-forward at the predicted positions only."""
    tokens = batch * seq
    qkvo, ffn, scores = 4 * hidden * hidden, 2 * hidden * inter, 2 * seq * hidden  # MACs per token
    per_layer = 2 * (qkvo + ffn + scores) * tokens
    last = per_layer
    if sparse_final_layer:
        last = 2 * (2 * hidden * hidden * tokens + (2 * hidden * hidden + ffn + scores) * predicted)
    head = 2 * (hidden * hidden + hidden * VOCAB) * predicted
    return 3 * ((layers - 1) * per_layer + last + head)


def prepare(seq: int):
    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.data.shards import packed_blocks

    cfg = build_config({}, [f"data.seq_length={seq}", f"tokenizer.vocab_size={VOCAB}"])
    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
    return data.tokenizer, packed_blocks(data.shards, "train", seq, data.tokenizer.cls_token_id)


def run_masklab(tokenizer, blocks, preset: str, precision: str, batch: int, steps: int, extra=()) -> list[float]:
    """Per-step tokens/s of the real masklab loop, warm-up included (the caller drops it)."""
    from masklab.config import build_config
    from masklab.models import build_model
    from masklab.pretrain.run import train_pretraining

    cfg = build_config({}, ["model.architecture=bert", f"model.preset={preset}", f"train.precision={precision}", f"train.batch_size={batch}",
                            f"train.max_steps={steps}", "train.log_every=1", "train.eval_every=0", "train.save_every=0",
                            f"data.seq_length={blocks.seq_length}", *extra])
    torch.manual_seed(0)
    model = build_model(cfg.model, tokenizer, blocks.seq_length)
    model.resize_token_embeddings(VOCAB, mean_resizing=False)  # bert-base vocabulary size on both sides
    with tempfile.TemporaryDirectory() as tmp:
        train_pretraining(model, tokenizer, blocks, blocks, cfg, Path(tmp), precision, show_progress=False)
        lines = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    return [line["tokens_per_second"] for line in lines if "tokens_per_second" in line]


def run_hf(tokenizer, blocks, preset: str, precision: str, batch: int, steps: int) -> list[float]:
    """Per-step tokens/s of the Hugging Face run_mlm-style loop on the same blocks."""
    from masklab.models import PRESETS

    baseline = HFBaseline(tokenizer, *PRESETS[preset], vocab_size=VOCAB, precision=precision)
    tps = []
    for step in range(steps):
        start = time.perf_counter()
        baseline.step(blocks.gather(range(step * batch, (step + 1) * batch)), lr_factor=1 - step / steps)
        tps.append(batch * blocks.seq_length / (time.perf_counter() - start))
    return tps


def measure(fn, warmup: int, reps: int) -> float:
    medians = [statistics.median(fn()[warmup:]) for _ in range(reps)]
    return statistics.median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["mini", "small"])
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per repetition, warm-up included")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()

    from masklab.models import PRESETS
    from masklab.runtime import choose_precision

    torch.manual_seed(0)
    tokenizer, blocks = prepare(args.seq_length)
    peak = {"fp32": matmul_peak_gflops(torch.float32), "bf16": matmul_peak_gflops(torch.bfloat16)}
    precisions = ["fp32", "bf16"]  # both, always: what each costs on this machine is the point
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, matmul peak fp32 {peak['fp32']:,.0f} / "
          f"bf16 {peak['bf16']:,.0f} GFLOP/s; "
          f"batch {args.batch_size} x seq {args.seq_length}, vocab {VOCAB}, {len(blocks):,} sotu blocks\n")
    rows, ceilings = [], []
    for preset in args.presets:
        layers, hidden, heads, inter = PRESETS[preset]
        run = dict(tokenizer=tokenizer, blocks=blocks, preset=preset, batch=args.batch_size, steps=args.steps)
        hf = {p: measure(lambda p=p: run_hf(precision=p, **run), args.warmup, args.reps) for p in precisions}
        ours = {p: measure(lambda p=p: run_masklab(precision=p, **run), args.warmup, args.reps) for p in precisions}
        tokens = args.batch_size * args.seq_length
        for p in precisions:
            flops_ours = model_flops_per_step(layers, hidden, inter, args.batch_size, args.seq_length, 0.15 * tokens,
                                              sparse_final_layer=True)
            flops_hf = model_flops_per_step(layers, hidden, inter, args.batch_size, args.seq_length, tokens)
            rows.append((preset, f"{p} vs {p}", ours[p], hf[p], ours[p] / hf[p],
                         flops_ours * ours[p] / tokens / 1e9 / peak[p], flops_hf * hf[p] / tokens / 1e9 / peak[p]))
        default, _ = choose_precision("auto", hidden, inter, args.batch_size * args.seq_length)
        best = max(peak[p] for p in precisions) * 1e9 * tokens / flops_ours  # tok/s at 100% of the faster peak
        ceilings.append(f"{preset}: at 100% of the matmul peak masklab would train {best:,.0f} tok/s = "
                        f"{best / hf['fp32']:.2f}x the HF default; default precision here: {default}")
        rows.append((preset, f"masklab default ({default}) vs HF default (fp32)", ours[default], hf["fp32"],
                     ours[default] / hf["fp32"], float("nan"), float("nan")))
    print("| preset | comparison | masklab tok/s | HF tok/s | ratio | masklab MFU | HF MFU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for preset, what, a, b, ratio, mfu_a, mfu_b in rows:
        mfu = f"{mfu_a:.1%} | {mfu_b:.1%}" if mfu_a == mfu_a else "– | –"
        print(f"| {preset} | {what} | {a:,.0f} | {b:,.0f} | **{ratio:.2f}x** | {mfu} |")
    print("\n" + "\n".join(ceilings))


if __name__ == "__main__":
    main()
