"""Where the time of one training step goes: masklab vs the Hugging Face baseline (torch.profiler).

Groups the profiler's operators into a few buckets (matmuls, attention, vocabulary softmax/loss,
dtype casts, memory fills/copies, optimizer, other) and prints each side's milliseconds per step.

    python benchmarks/profile_step.py --preset mini             # precision: what masklab picks here
    python benchmarks/profile_step.py --preset small --precision fp32
    python benchmarks/profile_step.py --smoke                   # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import contextlib

import torch

from hf_baseline import HFBaseline
from machine import SMOKE_DOCUMENTS, parse_args, ratio_line
from pretrain_throughput import VOCAB, prepare

BUCKETS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"),
    "attention": ("scaled_dot_product", "aten::_softmax", "aten::softmax"),
    "vocab loss": ("log_softmax", "nll_loss", "cross_entropy"),
    "casts/copies": ("aten::copy_", "aten::_to_copy", "aten::to"),
    "fills": ("aten::fill_", "aten::zero_", "aten::zeros"),
    "optimizer": ("adamw", "aten::_foreach", "aten::_fused_adam"),
    "gelu/layernorm": ("gelu", "layer_norm"),
}


def bucket(name: str) -> str:
    lower = name.lower()
    for key, needles in BUCKETS.items():
        if any(n.lower() in lower for n in needles):
            return key
    return "other"


def profile(step, steps: int = 3) -> dict[str, float]:
    for _ in range(2):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        totals[bucket(event.key)] = totals.get(bucket(event.key), 0.0) + event.self_cpu_time_total / 1000 / steps
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto = what masklab would pick on this machine",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-documents", type=int, default=0, help="0 = the whole corpus")
    args = parse_args(parser, smoke=dict(preset="tiny", batch_size=4, max_documents=SMOKE_DOCUMENTS))

    from masklab.config import build_config
    from masklab.masking import MLMBatcher
    from masklab.models import build_model, preset_shape
    from masklab.objectives.mlm import MaskedLMObjective
    from masklab.runtime import choose_precision, tune_allocator
    from masklab.train import make_optimizer

    tune_allocator()
    cfg = build_config({}, ["model.architecture=bert", f"model.preset={args.preset}", "train.lr=5e-4"])
    args.precision, _ = choose_precision(args.precision, *preset_shape(cfg.model)[1:4:2], args.batch_size * 128)
    tokenizer, sotu = prepare(128, max_documents=args.max_documents)
    blocks = sotu.gather(range(args.batch_size))
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
    )

    torch.manual_seed(0)
    model = build_model(cfg.model, tokenizer, 128)
    model.resize_token_embeddings(VOCAB, mean_resizing=False)
    objective, optimizer = MaskedLMObjective(model), make_optimizer(model, cfg.train)
    batcher = MLMBatcher(cfg.masking, tokenizer, seed=0)

    def ours():
        batch = batcher(blocks, block_ids=range(len(blocks)))
        with autocast():
            loss = objective(batch["input_ids"], batch["labels"])["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    hf = HFBaseline(tokenizer, *preset_shape(cfg.model), vocab_size=VOCAB, precision=args.precision)
    rows = {"masklab": profile(ours), "Hugging Face": profile(lambda: hf.step(blocks))}
    keys = sorted({k for r in rows.values() for k in r}, key=lambda k: -rows["Hugging Face"].get(k, 0))
    print(f"ms per step, {args.preset}, {args.precision}, batch {args.batch_size} x 128, vocab {VOCAB}\n")
    print("| bucket | masklab | Hugging Face |")
    print("|---|---:|---:|")
    for k in keys:
        print(f"| {k} | {rows['masklab'].get(k, 0):.0f} | {rows['Hugging Face'].get(k, 0):.0f} |")
    totals = {side: sum(r.values()) for side, r in rows.items()}
    print(f"| **total** | {totals['masklab']:.0f} | {totals['Hugging Face']:.0f} |\n")
    ratio_line(
        f"profile_step {args.preset} {args.precision} profiled ms per step",
        totals["masklab"],
        totals["Hugging Face"],
        "ms",
        lower_is_better=True,
    )
    top = max(rows["Hugging Face"], key=rows["Hugging Face"].get)  # the baseline's biggest bucket
    ratio_line(
        f"profile_step {args.preset} {args.precision} '{top}' ms per step",
        rows["masklab"].get(top, 0.0),
        rows["Hugging Face"][top],
        "ms",
        lower_is_better=True,
    )


if __name__ == "__main__":
    main()
