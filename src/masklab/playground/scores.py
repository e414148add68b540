"""Sentence scores side by side: a minimal-pair explorer over one or two runs.

A masked LM scores a sentence by its pseudo-log-likelihood (each word masked in turn, `pll_word`, or each
token, `pll`: Salazar et al. 2020; Kauf & Ivanova 2023); a causal LM by its log-likelihood. Sentences
are ranked per run, so the page shows which sentence of a pair each model prefers.
"""

from __future__ import annotations

from masklab.errors import UserError
from masklab.evaluate.scoring import SentenceScorer, objective_of
from masklab.objective_records import record

MAX_SENTENCES = 32  # one page: more is a job for `masklab evaluate --pairs`


def score_kinds(run) -> list[str]:

    return list(record(objective_of(run.model)).scores)  # a checkpoint's family: its main score first


def score_sentences(run, sentences: list[str] | str, kind: str = "") -> list[dict]:
    """[{"sentence", "score", "tokens", "per_token", "rank"}] in the given order; rank 1 = the most likely.
    A string is one sentence (not a sequence of characters to score one by one)."""

    if isinstance(sentences, str):
        sentences = [sentences]
    if not all(isinstance(s, str) for s in sentences):
        raise UserError("sentences must be a string or a list of strings")
    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise UserError("give at least one sentence (one per line) to score")
    if len(sentences) > MAX_SENTENCES:
        raise UserError(
            f"the page scores up to {MAX_SENTENCES} sentences at once (got {len(sentences)}); "
            "use `masklab evaluate --pairs FILE` for more"
        )
    kinds = score_kinds(run)
    kind = kind or kinds[0]
    if kind not in kinds:
        raise UserError(f"{run.name} scores sentences with {', '.join(kinds)}, not {kind}")
    scorer = SentenceScorer(run.model, run.tokenizer)
    long = [i + 1 for i, s in enumerate(sentences) if len(run.tokenizer(s)["input_ids"]) > run.max_tokens]
    if long:
        raise UserError(f"sentence {long[0]} is longer than the {run.max_tokens} tokens {run.name} reads; shorten it")
    totals = scorer.scores(kind, sentences)
    counts = scorer.token_counts(sentences)
    order = sorted(range(len(sentences)), key=lambda i: -totals[i])
    rank = {i: r + 1 for r, i in enumerate(order)}
    return [
        {
            "sentence": s,
            "score": float(totals[i]),
            "tokens": int(counts[i]),
            "per_token": float(totals[i] / max(counts[i], 1)),
            "rank": rank[i],
            "kind": kind,
        }
        for i, s in enumerate(sentences)
    ]
