"""CLM + MLM fusion by reranking: the causal LM proposes, the masked LM rescores.

The causal LM writes `candidates` continuations of each prompt (top-p, KV cache); each candidate is
scored by both models — the masked LM by pseudo-log-likelihood (Salazar et al. 2020, arXiv 1910.14659),
the causal LM by its log-likelihood — and the best `n` by (1 - w) PLL + w LL are kept: w = 0 ranks by
the masked LM alone, w = 1 by the causal LM alone. (The other fusion, a product of experts inside
iterative unmasking, is `FusedPredictor`.)
"""

from __future__ import annotations

import numpy as np
import torch

from masklab.evaluate.scoring import SentenceScorer
from masklab.runtime import device_of


@torch.no_grad()
def propose(
    causal, tokenizer, prompt: str, length: int, candidates: int, top_p: float, temperature: float, seed: int
) -> list[list[int]]:
    """`candidates` continuations of exactly `length` tokens (special tokens suppressed)."""
    device = device_of(causal)
    torch.manual_seed(seed)
    ids = [tokenizer.cls_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    source = torch.tensor([ids], device=device)
    out = causal.generate(
        input_ids=source,
        attention_mask=torch.ones_like(source),
        do_sample=temperature > 0,
        temperature=max(temperature, 1e-5),
        top_p=top_p,
        top_k=0,
        max_new_tokens=length,
        min_new_tokens=length,
        num_return_sequences=candidates,
        pad_token_id=tokenizer.pad_token_id,
        suppress_tokens=sorted(set(tokenizer.all_special_ids)),
    )
    return out[:, source.shape[1] :].tolist()


def rerank(
    masked, causal, tokenizer, prompt: str, proposals: list[list[int]], n: int, weight: float, precision: str = "fp32"
) -> list[tuple[list[int], float, float]]:
    """The best `n` proposals as (tokens, PLL, LL), best first."""
    texts = [(prompt.rstrip() + " " + tokenizer.decode(p)).strip() for p in proposals]
    pll = SentenceScorer(masked, tokenizer, precision).scores("pll", texts)
    ll = SentenceScorer(causal, tokenizer, precision).scores("causal", texts)
    order = np.argsort(-((1.0 - weight) * pll + weight * ll), kind="stable")[:n]
    return [(proposals[i], float(pll[i]), float(ll[i])) for i in order]
