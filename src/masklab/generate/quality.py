"""How good generated text is, by numbers that check each other.

judge_perplexity  perplexity of the samples under a separate causal LM (the judge re-tokenises the text,
                  so any causal LM works); low is fluent, but a model that repeats itself also scores low
unigram_entropy   entropy (nats) of each sample's token distribution, averaged (MDLM, Sahoo et al. 2024:
                  degenerate samples have low entropy at a deceptively good judge perplexity)
distinct_n        distinct n-grams / all n-grams over the samples (Li et al. 2016); higher is more varied
repetition_4      seq-rep-4 (Welleck et al. 2019): share of repeated 4-grams within a sample
self_bleu         BLEU of each sample against all the others (Zhu et al. 2018, Texygen), via sacrebleu;
                  high means the samples resemble each other
given_text_intact share of samples whose given text survived byte for byte (inpainting)
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import sacrebleu

from masklab.evaluate.generation import distinct_n, repetition
from masklab.evaluate.scoring import SentenceScorer


def unigram_entropy(samples: list[list[int]]) -> float:
    values = []
    for tokens in samples:
        if tokens:
            counts = np.array(list(Counter(tokens).values()), dtype=np.float64)
            p = counts / counts.sum()
            values.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(values)) if values else 0.0


def self_bleu(texts: list[str]) -> float:
    """Mean sentence BLEU (0-100) of each text with every other text as references."""

    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        return 0.0
    return float(np.mean([sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]))


def judge_perplexity(judge, judge_tokenizer, texts: list[str], precision: str = "fp32") -> float:
    """exp(mean negative log-likelihood per token) of the texts under the judge (a causal LM)."""

    texts = [t for t in texts if t.strip()]
    scorer = SentenceScorer(judge, judge_tokenizer, precision)
    total = float(scorer.scores("causal", texts).sum())
    tokens = float(scorer.token_counts(texts).sum())
    return math.exp(-total / max(tokens, 1.0))


def quality(
    samples: list[list[int]],
    texts: list[str],
    judge=None,
    judge_tokenizer=None,
    intact: list[bool] | None = None,
    precision: str = "fp32",
) -> dict:
    out = {
        "samples": len(texts),
        "mean_generated_tokens": float(np.mean([len(s) for s in samples])) if samples else 0.0,
        "unigram_entropy": unigram_entropy(samples),
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "repetition_4": repetition(samples),
        "self_bleu": self_bleu(texts),
    }
    if judge is not None:
        out["judge_perplexity"] = judge_perplexity(judge, judge_tokenizer, texts, precision)
    if intact is not None:
        out["given_text_intact"] = float(np.mean(intact)) if intact else 1.0
    return out
