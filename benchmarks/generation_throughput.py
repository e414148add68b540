"""Generation speed: a masked LM writing by mask-predict vs a causal LM of the same size through
transformers' `generate()` with its KV cache, side by side in one run.

Models: `--mlm RUN --clm RUN`, trained masklab runs with one tokenizer (e.g. the mlm15 and clm runs of
benchmarks/generation_quality.py), or else built fresh by masklab's `build_model` at `--preset`:
ModernBERT (mlm) and the parameter-matched Llama (clm) on the tokenizer masklab trains on
`builtin:sotu`. Trained models give the honest figure: top-p costs depend on how peaked the
predictions are, and an untrained model's are flat (the worst case for the CPU sampler). Every sample
is `--length` new tokens (default 128) after [CLS], in batches of `--batch` (default 16), fp32.

- masklab: `iterative_unmask(MaskedPredictor(mlm), ...)` with mask-predict at T = 8, 32, 128 steps: T full
  forward passes of the batch, the head only at the generated positions, no host reads between steps.
- transformers: `clm.generate(do_sample=True, top_p=0.9, max_new_tokens=L, min_new_tokens=L)` with the
  KV cache (`use_cache=True`, its default), special tokens suppressed so every sample has exactly L tokens.

tokens/s = batch x length / wall clock, best of `--reps` after one warm-up. The last line names the step
count from which the masked LM is slower than the cached causal LM (linear interpolation in log T).

    python benchmarks/generation_throughput.py --mlm runs/generation-quality/mlm15 --clm runs/generation-quality/clm
    python benchmarks/generation_throughput.py                              # fresh models
    python benchmarks/generation_throughput.py --preset tiny --reps 1      # quick look
    python benchmarks/generation_throughput.py --smoke                     # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from machine import SMOKE_DOCUMENTS, machine, parse_args, ratio_line


def load(mlm: str, clm: str):
    from masklab.generate.run import load_causal, load_masked

    model, tokenizer = load_masked(mlm)
    return tokenizer, {"mlm": model, "clm": load_causal(clm, "--clm")[0]}


def build(preset: str, length: int, max_documents: int = 0):
    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.models import build_model

    cfg = build_config({}, [f"data.max_documents={max_documents}"])
    tokenizer = prepare_data(cfg.data, cfg.tokenizer, show_progress=False).tokenizer
    models = {}
    for objective in ("mlm", "clm"):
        run = build_config(
            {}, [f"train.objective={objective}", f"model.preset={preset}", f"data.seq_length={length + 2}"]
        )
        torch.manual_seed(0)
        models[objective] = build_model(run.model, tokenizer, length + 2, objective).eval()
    return tokenizer, models


def best(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from masklab.generate import iterative_unmask
    from masklab.generate.predictors import MaskedPredictor

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--mlm", help="a trained mlm run (with --clm): measure trained models")
    parser.add_argument("--clm", help="a trained clm run with the same tokenizer")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--max-documents", type=int, default=0, help="fresh models: the tokenizer's corpus slice (0 = all of it)"
    )
    args = parse_args(
        parser, smoke=dict(preset="tiny", length=16, batch=2, steps=[2, 8], reps=1, max_documents=SMOKE_DOCUMENTS)
    )
    print(machine())
    tokenizer, models = (
        load(args.mlm, args.clm) if args.mlm and args.clm else build(args.preset, args.length, args.max_documents)
    )
    B, L = args.batch, args.length
    special = sorted(set(tokenizer.all_special_ids))
    source = torch.full((B, 1), tokenizer.cls_token_id)

    def causal():
        with torch.no_grad():
            out = models["clm"].generate(
                input_ids=source,
                attention_mask=torch.ones_like(source),
                do_sample=True,
                top_p=0.9,
                top_k=0,
                max_new_tokens=L,
                min_new_tokens=L,
                suppress_tokens=special,
                pad_token_id=tokenizer.pad_token_id,
            )
        assert out.shape == (B, L + 1)

    hf_seconds = best(causal, args.reps)
    hf_rate = B * L / hf_seconds
    ids = torch.full((B, L + 2), tokenizer.mask_token_id)
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    editable = torch.zeros_like(ids, dtype=torch.bool)
    editable[:, 1:-1] = True
    forbidden = torch.zeros(len(tokenizer), dtype=torch.bool)
    forbidden[special] = True
    predictor = MaskedPredictor(models["mlm"])
    print(
        f"{f'{args.mlm} vs {args.clm}' if args.mlm else f'preset {args.preset}, untrained'}, {B} samples x {L} "
        "tokens, fp32"
    )
    print(f"{'generator':<34}{'seconds':>9}{'tokens/s':>11}{'vs generate()':>15}")
    print(f"{'clm generate() + KV cache, top-p':<34}{hf_seconds:>9.2f}{hf_rate:>11,.0f}{1.0:>14.2f}x")
    rates = []
    for steps in args.steps:

        def masked():
            iterative_unmask(
                predictor,
                ids,
                editable,
                "mask-predict",
                steps,
                1.0,
                0,
                0.9,
                torch.Generator().manual_seed(0),
                mask_token_id=tokenizer.mask_token_id,
                forbidden=forbidden,
            )

        seconds = best(masked, args.reps)
        rates.append(B * L / seconds)
        print(f"{f'mlm mask-predict T={steps}':<34}{seconds:>9.2f}{rates[-1]:>11,.0f}{rates[-1] / hf_rate:>14.2f}x")
    crossing = None
    for (t0, r0), (t1, r1) in zip(zip(args.steps, rates), zip(args.steps[1:], rates[1:])):
        if r0 >= hf_rate > r1:
            f = (math.log(r0) - math.log(hf_rate)) / (math.log(r0) - math.log(r1))
            crossing = math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))
    if crossing:
        print(f"the masked LM is faster up to about T = {crossing:.0f} steps for {L}-token samples")
    elif rates and rates[-1] >= hf_rate:
        print(f"the masked LM is faster at every step count measured (up to T = {args.steps[-1]})")
    else:
        print(f"the masked LM is slower at every step count measured (from T = {args.steps[0]})")
    for steps, rate in zip(args.steps, rates):
        ratio_line(
            f"generation_throughput mask-predict T={steps} vs clm generate()",
            rate,
            hf_rate,
            "tok/s",
            masklab="masklab mlm",
            baseline="hf generate()",
        )


if __name__ == "__main__":
    main()
