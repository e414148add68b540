"""Sentence scoring throughput: masklab's batched `SentenceScorer` for every score kind, and naive PLL.

Models: built fresh (untrained: the speed does not depend on the weights) at `--preset` (mini) by masklab's
`build_model`, one per objective: ModernBERT (mlm) for "pll" and "pll_word", Llama (clm) for "causal",
T5 (seq2seq) for "sentinel"; the tokenizer is the one masklab trains on `builtin:sotu` (default config,
`prepare_data`). Sentences: the first `--sentences` held-out sentences of builtin:sotu's validation split,
picked as `masklab evaluate` picks them (5 to 40 words). Precision fp32, as `masklab evaluate` scores.

- masklab: `SentenceScorer(model, tokenizer).scores(kind, sentences)`: every query of every sentence (one
  per token for pll / pll_word, one per sentence for causal, one per word for sentinel), sorted by
  length, padded into batches of about 4,096 tokens, the output head only at the scored positions.
- naive PLL (Salazar et al. 2020 written out): per sentence, per token, one masked copy of
  `tokenizer(text)` as a batch of one -> `model(input_ids).logits` (the head at every position) ->
  log-softmax at the masked position. Its sum must equal masklab's "pll" (the largest |difference| is printed).

Each timing is the wall clock over all sentences, best of `--reps`, after a warm-up on a few sentences.

    python benchmarks/sentence_scoring.py                      # 128 sentences
    python benchmarks/sentence_scoring.py --sentences 16 --reps 1   # quick look
    python benchmarks/sentence_scoring.py --smoke                   # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from machine import SMOKE_DOCUMENTS, machine, parse_args, ratio_line

KINDS = {"pll": "mlm", "pll_word": "mlm", "causal": "clm", "sentinel": "seq2seq"}  # score -> objective of its model


@torch.no_grad()
def naive_pll(model, tokenizer, texts: list[str]) -> np.ndarray:
    """One forward pass per masked copy, unbatched, full logits."""
    out = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]  # [CLS] ... [SEP]
        total = 0.0
        for i in range(1, len(ids) - 1):
            masked = torch.tensor([ids])
            masked[0, i] = tokenizer.mask_token_id
            total += torch.log_softmax(model(input_ids=masked).logits[0, i].float(), -1)[ids[i]].item()
        out.append(total)
    return np.array(out)


def best_time(fn, reps: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(reps):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--naive-reps", type=int, default=1, help="the naive loop is slow: one pass is plenty")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--max-documents", type=int, default=0, help="0 = the whole corpus")
    args = parse_args(parser, smoke=dict(sentences=4, reps=1, preset="tiny", max_documents=SMOKE_DOCUMENTS))

    from masklab.config import build_config
    from masklab.data.pipeline import prepare_data
    from masklab.evaluate.run import heldout_sentences
    from masklab.evaluate.scoring import SentenceScorer
    from masklab.models import build_model

    cfg = build_config({}, [f"model.preset={args.preset}", f"data.max_documents={args.max_documents}"])
    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
    tokenizer = data.tokenizer
    sentences = heldout_sentences(data.corpus.documents("val"), args.sentences)
    models = {}
    for objective in dict.fromkeys(KINDS.values()):
        torch.manual_seed(0)
        models[objective] = build_model(cfg.model, tokenizer, cfg.data.seq_length, objective).eval()
    scorers = {objective: SentenceScorer(model, tokenizer) for objective, model in models.items()}
    tokens = scorers["mlm"].token_counts(sentences)
    print(
        f"{machine()}\n{len(sentences)} held-out sotu sentences, {tokens.mean():.1f} tokens each on average "
        f"(vocab {len(tokenizer):,}); {args.preset} preset, fp32, best of {args.reps}\n"
    )
    print("| score | model | queries | masklab sentences/s | naive sentences/s | batching speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    figures = {}
    for kind, objective in KINDS.items():
        scorer = scorers[objective]
        scorer.scores(kind, sentences[:4])  # warm-up
        queries = len(scorer.queries(kind, sentences))
        seconds, scores = best_time(lambda scorer=scorer, kind=kind: scorer.scores(kind, sentences), args.reps)
        figures[kind] = scores
        naive, ratio = "–", "–"
        if kind == "pll":
            naive_pll(models["mlm"], tokenizer, sentences[:2])  # warm-up
            naive_seconds, naive_scores = best_time(
                lambda: naive_pll(models["mlm"], tokenizer, sentences), args.naive_reps
            )
            naive, ratio = f"{len(sentences) / naive_seconds:,.1f}", f"**{naive_seconds / seconds:.1f}x**"
            difference = np.abs(naive_scores - scores).max()
            pll_rates = len(sentences) / seconds, len(sentences) / naive_seconds
        name = type(models[objective]).__name__
        print(f"| {kind} | {name} | {queries:,} | {len(sentences) / seconds:,.1f} | {naive} | {ratio} |")
    print(
        f"\nnaive vs batched PLL: largest |difference| of a sentence's log-probability {difference:.2e} nats "
        f"(scores {figures['pll'].mean():.1f} on average)"
    )
    ratio_line("sentence_scoring pll batched vs naive", *pll_rates, "sentences/s", baseline="naive PLL")


if __name__ == "__main__":
    main()
