"""Drawing tokens from per-position log-probabilities: temperature, top-k, top-p (nucleus), greedy.

Everything stays on the device and keeps its shape, so a generation step never waits for the host.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0  # 0 = greedy (argmax); below 1 sharpens, above 1 flattens
    top_k: int = 0  # keep the k most likely tokens (0 = all)
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p (Holtzman et al. 2020); 1 = all

    def untruncated(self) -> "Sampling":
        return replace(self, top_k=0, top_p=1.0)


def truncate(scores: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """`scores` (..., V) with everything outside the top-k / nucleus set to -inf (the best token always stays)."""
    if top_k and top_k < scores.shape[-1]:
        kth = scores.topk(top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        outside = (probs.cumsum(dim=-1) - probs) >= top_p  # the mass before a token already reaches p
        scores = scores.masked_fill(outside.scatter(-1, order, outside), float("-inf"))
    return scores


def draw(logp: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None):
    """(tokens (...,), their log-probability under `logp`) for log-probabilities `logp` (..., V).

    The confidence the strategies rank by is the model's own log-probability of the drawn token, before
    temperature and truncation, as in mask-predict and MaskGIT.
    """
    if sampling.temperature <= 0:
        tokens = logp.argmax(dim=-1)
    else:
        scores = truncate(logp / sampling.temperature, sampling.top_k, sampling.top_p)
        probs = scores.softmax(dim=-1).reshape(-1, scores.shape[-1])
        tokens = torch.multinomial(probs, 1, generator=generator).reshape(scores.shape[:-1])
    return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
