"""Masking throughput: every masklab strategy's collator vs Hugging Face's, side by side in one run.

All collators mask the same (batch, seq_length) blocks of `builtin:sotu` on one core
(torch.set_num_threads(1)) and are timed per batch, best of `--reps` passes over `--batches` batches.

- masklab: `MLMBatcher.from_blocks` for each strategy: gathering the blocks and their per-token features
  from the memmapped shards, selection, and the shared 80/10/10 `corrupt()`. Tags, entities and PMI units
  are looked up once at tokenisation time (sidecars, built before timing; their build time is printed).
- Hugging Face: `DataCollatorForLanguageModeling(mlm_probability=rate)`, random and `whole_word_mask=True`,
  given the blocks as a dataset would (lists of ids) plus `special_tokens_mask` (its fast path) and, for
  whole words, `offset_mapping` encoding the same word boundaries masklab uses.

    python benchmarks/masking_throughput.py                   # all strategies, full corpus
    python benchmarks/masking_throughput.py --max-documents 40 --batches 20   # quick look
    python benchmarks/masking_throughput.py --smoke           # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from machine import SMOKE_DOCUMENTS, best_pass_seconds, machine, parse_args, ratio_line

STRATEGIES = ["random", "whole_word", "span", "pos", "entity", "pmi"]


def time_collator(fn, batches: list, reps: int) -> float:
    """Tokens per second of `fn` over `batches`, best of `reps` passes (after one warm-up call)."""
    return sum(b["tokens"] for b in batches) / best_pass_seconds(fn, batches, reps)


def hf_examples(ids: np.ndarray, words: np.ndarray, special: np.ndarray, with_offsets: bool) -> list[dict]:
    """One dict per block, as a tokenised dataset yields them; offsets encode masklab's word starts
    (a one-character gap before every word start, contiguous characters within a word)."""
    rows = []
    for row, starts, spec in zip(ids, words, special):
        example = {"input_ids": row.tolist(), "special_tokens_mask": spec.astype(int).tolist()}
        if with_offsets:
            begin = np.arange(len(row)) * 2 - np.cumsum(1 - starts)  # word starts leave a gap, sub-tokens touch
            example["offset_mapping"] = np.stack([begin, begin + 1], axis=1).tolist()
        rows.append(example)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.15)
    parser.add_argument(
        "--max-documents", type=int, default=0, help="0 = the whole corpus (POS tagging it takes minutes once)"
    )
    args = parse_args(parser, smoke=dict(max_documents=SMOKE_DOCUMENTS, batches=2, reps=1, batch_size=8))
    torch.set_num_threads(1)

    from transformers import DataCollatorForLanguageModeling

    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.data.shards import packed_blocks
    from masklab.masking import MLMBatcher

    base = [
        "data.corpus=builtin:sotu",
        f"data.seq_length={args.seq_length}",
        f"data.max_documents={args.max_documents}",
        f"masking.rate={args.rate}",
    ]
    cfg = build_config({}, base)
    data = prepare_data(cfg.data, cfg.tokenizer)
    tokenizer = data.tokenizer
    blocks = packed_blocks(data.shards, "train", args.seq_length, tokenizer.cls_token_id)
    n = min(args.batches, len(blocks) // args.batch_size)
    order = np.random.default_rng(0).permutation(len(blocks))[: n * args.batch_size].reshape(n, args.batch_size)
    print(machine())
    print(
        f"{n} batches of {args.batch_size} x {args.seq_length} tokens from builtin:sotu, one thread, best of "
        f"{args.reps}"
    )

    results = []
    batches = [{"ids": ids, "tokens": ids.size * args.seq_length} for ids in order]
    for strategy in args.strategies.split(","):
        batcher = MLMBatcher(build_config({}, [*base, f"masking.strategy={strategy}"]).masking, tokenizer, seed=0)
        start = time.perf_counter()
        batcher.attach(blocks)
        built = time.perf_counter() - start
        tps = time_collator(lambda b: batcher.from_blocks(blocks, b["ids"]), batches, args.reps)
        results.append((f"masklab {strategy}", tps, built))

    special = np.isin(np.arange(len(tokenizer)), tokenizer.all_special_ids)
    for name, wwm in (("random", False), ("whole_word", True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the whole-word collator warns that it drops the 80/10/10 split
            collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.rate, whole_word_mask=wwm)
        batches = []
        for ids in order:
            tokens = blocks.gather(ids)
            words = blocks.gather_features(ids, ["words"])["words"]
            batches.append({"examples": hf_examples(tokens, words, special[tokens], wwm), "tokens": tokens.size})
        results.append(
            (f"hugging face {name}", time_collator(lambda b: collator(b["examples"]), batches, args.reps), 0.0)
        )

    hf = {name.split()[-1]: tps for name, tps, _ in results if name.startswith("hugging face")}
    print(f"\n{'collator':<26}{'tokens/s':>14}{'vs HF random':>14}{'vs HF whole-word':>18}{'sidecar build s':>17}")
    for name, tps, built in results:
        print(f"{name:<26}{tps:>14,.0f}{tps / hf['random']:>13.1f}x{tps / hf['whole_word']:>17.1f}x{built:>17.1f}")
    print()
    for name, tps, _ in results:
        if name.startswith("masklab"):
            strategy = name.split()[-1]
            against = "random" if strategy == "random" else "whole_word"  # HF's nearest collator
            ratio_line(
                f"masking_throughput {strategy} vs hf {against}", tps, hf[against], "tok/s", baseline=f"hf {against}"
            )


if __name__ == "__main__":
    main()
