"""Time to accuracy: masklab vs the Hugging Face baseline for the same wall-clock budget.

Both sides train the same preset on `builtin:sotu` (same tokenizer, packed blocks, batch size, peak
learning rate, warm-up and linear decay over the time budget, same precision) for `--minutes` each,
one after the other in this process. Both final models are then scored by masklab's evaluation on the
same validation blocks with the same masks. From masklab's periodic evaluations we read the training
time it needed to reach the baseline's final accuracy (target: at most a third of the budget).

    python benchmarks/time_to_accuracy.py --minutes 3
    python benchmarks/time_to_accuracy.py --smoke        # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from hf_baseline import HFBaseline
from machine import SMOKE_DOCUMENTS, parse_args, ratio_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per side")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--eval-every", type=int, default=25, help="masklab steps between evaluations")
    parser.add_argument("--max-documents", type=int, default=0, help="0 = the whole corpus")
    args = parse_args(
        parser, smoke=dict(minutes=0.05, preset="tiny", batch_size=8, eval_every=5, max_documents=SMOKE_DOCUMENTS)
    )

    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.data.shards import packed_blocks
    from masklab.models import build_model, preset_shape
    from masklab.objectives.mlm import MaskedLMObjective, masked_lm_metrics
    from masklab.pretrain.run import train_pretraining
    from masklab.runtime import choose_precision, tune_allocator
    from masklab.train import lr_factor

    tune_allocator()
    cfg = build_config(
        {},
        [
            "model.architecture=bert",
            f"model.preset={args.preset}",
            "tokenizer.vocab_size=8000",
            f"train.batch_size={args.batch_size}",
            f"train.lr={args.lr}",
            f"train.precision={args.precision}",
            f"train.max_minutes={args.minutes}",
            "train.max_steps=1000000",
            f"train.eval_every={args.eval_every}",
            "train.save_every=0",
            f"data.max_documents={args.max_documents}",
            "train.warmup_fraction=0.06",
            "eval.max_blocks=256",
        ],
    )
    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
    tokenizer = data.tokenizer
    train_blocks = packed_blocks(data.shards, "train", cfg.data.seq_length, tokenizer.cls_token_id)
    val_blocks = packed_blocks(data.shards, "val", cfg.data.seq_length, tokenizer.cls_token_id)
    unigram = data.shards.unigram_counts()

    def score(model) -> float:
        return masked_lm_metrics(
            MaskedLMObjective(model), val_blocks, tokenizer, cfg.eval, cfg.masking, precision, unigram
        )

    # Hugging Face baseline: same blocks in the same order, same schedule over the same time budget.
    layers, hidden, heads, inter = preset_shape(cfg.model)
    precision, _ = choose_precision(args.precision, hidden, inter, args.batch_size * cfg.data.seq_length)
    baseline = HFBaseline(tokenizer, layers, hidden, heads, inter, len(tokenizer), precision, lr=args.lr)
    order = torch.randperm(len(train_blocks), generator=torch.Generator().manual_seed(0)).numpy()
    budget, start, step, hf_tokens = 60 * args.minutes, time.perf_counter(), 0, 0
    while (elapsed := time.perf_counter() - start) < budget:
        ids = order[(step * args.batch_size + torch.arange(args.batch_size).numpy()) % len(order)]
        baseline.step(train_blocks.gather(ids), lr_factor(elapsed / budget, 0.06, "linear"))
        step += 1
        hf_tokens += args.batch_size * cfg.data.seq_length
    hf = score(baseline.model)

    # masklab: the real loop, evaluating every few steps to find when it passed the baseline.
    torch.manual_seed(0)
    model = build_model(cfg.model, tokenizer, cfg.data.seq_length)
    with tempfile.TemporaryDirectory() as tmp:
        result, _ = train_pretraining(
            model, tokenizer, train_blocks, val_blocks, cfg, Path(tmp), precision, show_progress=False
        )
        evals = [
            r
            for r in map(json.loads, (Path(tmp) / "metrics.jsonl").read_text().splitlines())
            if "val_masked_accuracy" in r
        ]
    ours = score(model)
    reached = next((r["compute_seconds"] for r in evals if r["val_masked_accuracy"] >= hf["masked_accuracy"]), None)

    print(
        f"preset {args.preset}, batch {args.batch_size}, lr {args.lr}, {precision}, budget {args.minutes:g} min per "
        "side, "
        f"unigram baseline accuracy {hf['unigram_accuracy']:.3f}\n"
    )
    print("| side | tokens trained | masked accuracy | masked perplexity |")
    print("|---|---:|---:|---:|")
    print(f"| Hugging Face baseline | {hf_tokens:,} | {hf['masked_accuracy']:.4f} | {hf['masked_perplexity']:.1f} |")
    print(f"| masklab | {result.train_tokens:,} | {ours['masked_accuracy']:.4f} | {ours['masked_perplexity']:.1f} |")
    if reached is None:
        print(f"\nmasklab did not reach the baseline's accuracy {hf['masked_accuracy']:.4f} within the budget")
    else:
        print(
            f"\nmasklab reached the baseline's final accuracy ({hf['masked_accuracy']:.4f}) after {reached:.0f} s of "
            "training: "
            f"{reached / budget:.2f} of the budget"
        )
    print()
    ratio_line(
        f"time_to_accuracy {args.preset} {args.minutes:g} min masked accuracy",
        ours["masked_accuracy"],
        hf["masked_accuracy"],
        "accuracy",
    )
    ratio_line(
        f"time_to_accuracy {args.preset} {args.minutes:g} min tokens trained", result.train_tokens, hf_tokens, "tokens"
    )


if __name__ == "__main__":
    main()
