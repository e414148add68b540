"""Pretraining throughput: masklab vs the Hugging Face baseline, side by side in one run, per objective.

Both sides train the same model shape on the same packed blocks of `builtin:sotu`, with the same sequence
length, batch size and precision; tokens are the source block tokens a step consumes (batch x seq_length).
`--objective` picks the pair (the baselines are described in hf_baseline.py):

- mlm (default): masklab's real loop (`masklab.train.train` through `masklab.pretrain.run.train_pretraining`)
  on BERT (named explicitly: `model.architecture=bert`, vocabulary 30,522 as in bert-base) with masklab's
  speed defaults: sparse prediction, exact-count masking, no pretraining dropout, fused AdamW; against
  `run_mlm`: `BertForMaskedLM` at its default config, `DataCollatorForLanguageModeling`, dense loss.
- clm: the real loop with `train.objective=clm` at its defaults (Llama, masklab's tokenizer, no dropout,
  eager attention on CPU, next-token loss at T-1 positions, fused AdamW); against `run_clm`: the same
  `LlamaForCausalLM` config (built by masklab's `build_model` with SDPA attention, transformers' default),
  `DataCollatorForLanguageModeling(mlm=False)`, the model's own `labels=` loss, the Trainer's AdamW.
- seq2seq: the real loop with `train.objective=seq2seq` (T5, `SpanCorruptor`: exact counts, static
  shapes); against the same `T5ForConditionalGeneration` config (SDPA) fed by `T5SpanCollator` (the
  per-example span corruption of run_t5_mlm_flax, rate 0.15, mean span 3, same blocks), `labels=` loss.
- electra: the real loop with `train.objective=electra` (discriminator at the preset, generator at 1/4 width)
  against masklab's own default masked LM (`train.objective=mlm`, ModernBERT) on the same tokenizer and blocks:
  transformers ships no ELECTRA pretraining script, and what electra costs per token against the MLM it would
  replace is the question (the "HF" side is that MLM; both FLOP counts by FlopCounterMode).

masklab's loop also tunes glibc malloc for the process (`runtime.tune_allocator`: freed blocks stay mapped),
which the baseline lacks; so every baseline run comes first. `--hf-attention eager` and `--tune-hf-allocator`
give the baseline masklab's attention kernel and malloc settings, leaving the loops themselves.

Per side: warm-up steps are dropped, then the median step time over the measured steps, repeated `--reps`
times (median of medians); masklab's per-step tokens/s come from metrics.jsonl. Rows: each precision on
both sides, and masklab's default (`precision: auto`, decided by measurement) against HF's default (fp32).
Model FLOPs utilisation is against the matmul peak of the same precision, measured in the same run: for
mlm from the analytic count (masklab's head at masked positions only, the baseline's dense head); for clm
and seq2seq from torch's FlopCounterMode over one masklab step, used for both sides (the same matmuls).

    python benchmarks/pretrain_throughput.py                  # mlm: mini and small, fp32 and bf16
    python benchmarks/pretrain_throughput.py --objective clm --presets mini --steps 6 --reps 1   # quick look
    python benchmarks/pretrain_throughput.py --objective electra --presets mini   # electra against masklab's mlm
    python benchmarks/pretrain_throughput.py --smoke          # seconds: does it still run? (any --objective)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hf_baseline import HFBaseline, HFCausalBaseline, HFSeq2SeqBaseline
from machine import SMOKE_DOCUMENTS, machine, parse_args, ratio_line

VOCAB = 30522  # mlm only: bert-base's vocabulary on both sides; clm / seq2seq use masklab's default tokenizer
NOTES = {
    "mlm": "masklab skips work the dense baseline does (vocabulary head and last layer at unmasked positions, "
    "dropout) and tunes malloc; the ceiling below bounds what is left",
    "clm": "both sides do the same dense work (every position predicts the next token: nothing to skip); at one "
    "precision the gap is masklab's malloc tuning and, in bf16, eager attention instead of CPU SDPA "
    "(--hf-attention eager --tune-hf-allocator gives the baseline both); the default row adds masklab's precision "
    "choice",
    "electra": "electra runs two encoders on every token (a 1/4-width generator, then the discriminator) and the "
    "discriminator's head at every position, where the MLM runs one encoder with its last layer and vocabulary head "
    "at the masked positions only",
    "seq2seq": "both sides do the same model work (equal-length rows, no padding either way; the collators are ~1% "
    "of a step); at one precision the gap is masklab's malloc tuning and the attention kernel (--hf-attention eager "
    "--tune-hf-allocator gives the baseline both); the default row adds the precision choice",
}


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def model_flops_per_step(
    layers: int, hidden: int, inter: int, batch: int, seq: int, predicted: float, sparse_final_layer: bool = False
) -> float:
    """mlm: training FLOPs (3 x forward) one side performs per step: encoder matmuls, attention scores, and
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


def prepare(seq: int, objective: str = "mlm", max_documents: int = 0):
    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.data.shards import packed_blocks

    vocab = [f"tokenizer.vocab_size={VOCAB}"] if objective == "mlm" else []
    cfg = build_config({}, [f"data.seq_length={seq}", f"data.max_documents={max_documents}", *vocab])
    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False, objective=objective)
    return data.tokenizer, packed_blocks(data.shards, "train", seq, data.tokenizer.cls_token_id)


def masklab_model(tokenizer, preset: str, seq: int, objective: str, extra=(), classic: bool | None = None):
    """(run config, a fresh model) as the real loop gets them. `classic` (the default for mlm, against run_mlm): BERT
    at bert-base's vocabulary; otherwise the objective's own default model on masklab's tokenizer."""
    from masklab.config import build_config
    from masklab.models import build_model

    classic = objective == "mlm" if classic is None else classic
    arch = ["model.architecture=bert"] if classic else []
    # 15% masking whatever the preset's measured recipe (mini's masked LM trains at 34.5%): the rate the HF collator,
    # the span corruptor and the FLOP count use, so each side predicts as many tokens
    shape = [f"train.objective={objective}", f"model.preset={preset}", f"data.seq_length={seq}", "masking.rate=0.15"]
    cfg = build_config({}, [*arch, *shape, *extra])
    torch.manual_seed(0)
    model = build_model(cfg.model, tokenizer, seq, objective)
    if classic:
        model.resize_token_embeddings(VOCAB, mean_resizing=False)
    return cfg, model


def run_masklab(
    tokenizer,
    blocks,
    preset: str,
    precision: str,
    batch: int,
    steps: int,
    objective: str = "mlm",
    extra=(),
    classic: bool | None = None,
) -> list[float]:
    """Per-step tokens/s of the real masklab loop, warm-up included (the caller drops it)."""
    from masklab.pretrain.run import train_pretraining

    cfg, model = masklab_model(
        tokenizer,
        preset,
        blocks.seq_length,
        objective,
        [
            f"train.precision={precision}",
            f"train.batch_size={batch}",
            f"train.max_steps={steps}",
            "train.log_every=1",
            "train.eval_every=0",
            "train.save_every=0",
            *extra,
        ],
        classic,
    )
    with tempfile.TemporaryDirectory() as tmp:
        train_pretraining(model, tokenizer, blocks, blocks, cfg, Path(tmp), precision, show_progress=False)
        lines = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    return [line["tokens_per_second"] for line in lines if "tokens_per_second" in line]


def hf_baseline(tokenizer, preset: str, precision: str, seq: int, objective: str, attention: str = "sdpa"):
    from masklab.models import PRESETS

    if objective == "mlm":
        return HFBaseline(tokenizer, *PRESETS[preset], vocab_size=VOCAB, precision=precision)
    _, model = masklab_model(tokenizer, preset, seq, objective, [f"model.attention={attention}"])  # same config
    return (HFCausalBaseline if objective == "clm" else HFSeq2SeqBaseline)(model, tokenizer, precision)


def run_hf(
    tokenizer,
    blocks,
    preset: str,
    precision: str,
    batch: int,
    steps: int,
    objective: str = "mlm",
    attention: str = "sdpa",
) -> list[float]:
    """Per-step tokens/s of the Hugging Face loop for `objective` on the same blocks (electra: masklab's mlm)."""
    if objective == "electra":
        return run_masklab(tokenizer, blocks, preset, precision, batch, steps, "mlm", classic=False)
    baseline = hf_baseline(tokenizer, preset, precision, blocks.seq_length, objective, attention)
    tps = []
    for step in range(steps):
        start = time.perf_counter()
        baseline.step(blocks.gather(range(step * batch, (step + 1) * batch)), lr_factor=1 - step / steps)
        tps.append(batch * blocks.seq_length / (time.perf_counter() - start))
    return tps


def counted_step(tokenizer, blocks, preset: str, batch: int, objective: str) -> tuple[float, tuple[int, int]]:
    """(FLOPs of one masklab training step, forward + backward, by FlopCounterMode; (hidden, intermediate))."""
    from torch.utils.flop_counter import FlopCounterMode

    from masklab.masking import MLMBatcher
    from masklab.objectives import behaviour
    from masklab.objectives.clm import CausalBatcher, build_clm
    from masklab.objectives.electra import SampledBatcher
    from masklab.objectives.recipe import Setting
    from masklab.objectives.seq2seq import SpanCorruptor, build_seq2seq
    from masklab.runtime import model_shape

    cfg, model = masklab_model(tokenizer, preset, blocks.seq_length, objective, classic=False)
    if objective in ("electra", "mlm"):  # the loop's own module: electra's pair, mlm's sparse head
        setting = Setting(model, tokenizer, blocks, blocks, cfg, "fp32", None, False)
        objective_fn = behaviour(objective).parts(setting).terms[0].objective
        batcher = (SampledBatcher if objective == "electra" else MLMBatcher)(cfg.masking, tokenizer, 0)
    elif objective == "clm":
        objective_fn, batcher = build_clm(model, tokenizer), CausalBatcher()
    else:
        objective_fn, batcher = (
            build_seq2seq(model, tokenizer),
            SpanCorruptor(cfg.seq2seq, tokenizer, 0, blocks.seq_length),
        )
    counter = FlopCounterMode(display=False)
    with counter:
        objective_fn(**batcher.from_blocks(blocks, range(batch)))["loss"].backward()
    return counter.get_total_flops(), model_shape(model)


def measure(fn, warmup: int, reps: int) -> float:
    medians = [statistics.median(fn()[warmup:]) for _ in range(reps)]
    return statistics.median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objective", choices=["mlm", "clm", "seq2seq", "electra"], default="mlm")
    parser.add_argument("--presets", nargs="+", default=["mini", "small"])
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per repetition, warm-up included")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--hf-attention",
        choices=["sdpa", "eager"],
        default="sdpa",
        help="clm / seq2seq: the baseline's attention (sdpa = transformers' default; eager = masklab's on CPU)",
    )
    parser.add_argument(
        "--tune-hf-allocator",
        action="store_true",
        help="give the baseline masklab's malloc settings too (runtime.tune_allocator): the loops alone",
    )
    parser.add_argument("--max-documents", type=int, default=0, help="0 = the whole corpus")
    parser.add_argument("--peak-size", type=int, default=2048, help="n of the n x n matmuls that measure the peak")
    args = parse_args(
        parser,
        smoke=dict(
            presets=["tiny"],
            seq_length=64,
            batch_size=4,
            steps=3,
            warmup=1,
            reps=1,
            max_documents=SMOKE_DOCUMENTS,
            peak_size=256,
        ),
    )

    from masklab.models import PRESETS
    from masklab.runtime import choose_precision, tune_allocator

    objective = args.objective
    torch.manual_seed(0)
    tokenizer, blocks = prepare(args.seq_length, objective, args.max_documents)
    peak = {
        p: matmul_peak_gflops(dtype, args.peak_size) for p, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    precisions = ["fp32", "bf16"]  # both, always: what each costs on this machine is the point
    vocab = VOCAB if objective == "mlm" else len(tokenizer)
    attention = f"; HF attention {args.hf_attention}" if objective in ("clm", "seq2seq") else ""
    attention += "; HF with masklab's malloc tuning" if args.tune_hf_allocator else ""
    print(
        f"{machine()}\nmatmul peak fp32 {peak['fp32']:,.0f} / bf16 {peak['bf16']:,.0f} GFLOP/s; objective {objective}"
        f"{attention}\n"
        f"batch {args.batch_size} x seq {args.seq_length}, vocab {vocab:,}, {len(blocks):,} sotu blocks\n"
    )
    if args.tune_hf_allocator:
        tune_allocator()
    rows, ceilings = [], []
    tokens = args.batch_size * args.seq_length
    runs = {
        preset: dict(
            tokenizer=tokenizer,
            blocks=blocks,
            preset=preset,
            batch=args.batch_size,
            steps=args.steps,
            objective=objective,
        )
        for preset in args.presets
    }
    # every baseline run first: masklab's loop tunes malloc for the rest of the process (runtime.tune_allocator)
    hf_all = {
        (preset, p): measure(
            lambda run=run, p=p: run_hf(precision=p, attention=args.hf_attention, **run), args.warmup, args.reps
        )
        for preset, run in runs.items()
        for p in precisions
    }
    ours_all = {
        (preset, p): measure(lambda run=run, p=p: run_masklab(precision=p, **run), args.warmup, args.reps)
        for preset, run in runs.items()
        for p in precisions
    }
    for preset in args.presets:
        hf, ours = ({p: figures[preset, p] for p in precisions} for figures in (hf_all, ours_all))
        if objective == "mlm":
            layers, hidden, heads, inter = PRESETS[preset]
            flops_ours = model_flops_per_step(
                layers, hidden, inter, args.batch_size, args.seq_length, 0.15 * tokens, sparse_final_layer=True
            )
            flops_hf = model_flops_per_step(layers, hidden, inter, args.batch_size, args.seq_length, tokens)
            shape = other_shape = (hidden, inter)
        else:
            flops_ours, shape = counted_step(tokenizer, blocks, preset, args.batch_size, objective)
            flops_hf, other_shape = flops_ours, shape
            if objective == "electra":
                flops_hf, other_shape = counted_step(tokenizer, blocks, preset, args.batch_size, "mlm")
        for p in precisions:
            rows.append(
                (
                    preset,
                    f"{p} vs {p}",
                    ours[p],
                    hf[p],
                    ours[p] / hf[p],
                    flops_ours * ours[p] / tokens / 1e9 / peak[p],
                    flops_hf * hf[p] / tokens / 1e9 / peak[p],
                )
            )
        default, _ = choose_precision("auto", *shape, tokens)
        # the other side's default: HF's is fp32; masklab's mlm (electra's comparison) chooses as masklab does
        other_default = choose_precision("auto", *other_shape, tokens)[0] if objective == "electra" else "fp32"
        best = max(peak[p] for p in precisions) * 1e9 * tokens / flops_ours  # tok/s at 100% of the faster peak
        ceilings.append(
            f"{preset}: at 100% of the matmul peak masklab would train {best:,.0f} tok/s = "
            f"{best / hf['fp32']:.2f}x the {'mlm in fp32' if objective == 'electra' else 'HF default'}; default "
            f"precision here: {default}"
        )
        rows.append(
            (
                preset,
                f"masklab default ({default}) vs {'mlm' if objective == 'electra' else 'HF'} default ({other_default})",
                ours[default],
                hf[other_default],
                ours[default] / hf[other_default],
                float("nan"),
                float("nan"),
            )
        )
    other = "mlm" if objective == "electra" else "HF"
    print(f"| preset | comparison ({objective}) | masklab tok/s | {other} tok/s | ratio | masklab MFU | {other} MFU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for preset, what, a, b, ratio, mfu_a, mfu_b in rows:
        mfu = f"{mfu_a:.1%} | {mfu_b:.1%}" if mfu_a == mfu_a else "– | –"
        print(f"| {preset} | {what} | {a:,.0f} | {b:,.0f} | **{ratio:.2f}x** | {mfu} |")
    print("\n" + "\n".join(ceilings) + f"\nWhat limits the ratios: {NOTES[objective]}.\n")
    for preset, what, a, b, *_ in rows:
        ratio_line(f"pretrain_throughput {objective} {preset} {what}", a, b, "tok/s")


if __name__ == "__main__":
    main()
