"""Drawing tokens from per-position log-probabilities: temperature, top-k, top-p (nucleus), greedy.

Two exact paths. On a GPU everything stays dense and on the device (sort-based truncation), so a step
never waits for the host. On a CPU, sorting and sampling over the whole vocabulary for every position
cost several times the model's forward pass, so the draw is made among the `CANDIDATES[0]` most likely
tokens: top-k is exact there, and so is top-p wherever those candidates hold the nucleus (rows whose
nucleus is larger fall back to the dense path; a host check is free on a CPU). Without truncation the
draw is Gumbel-max over the whole vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

CANDIDATES = (
    256,
    4096,
)  # CPU: candidate tiers for a top-p draw before the whole vocabulary (topk(256) costs 1/7 of a full sort at V = 16k)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0  # 0 = greedy (argmax); below 1 sharpens, above 1 flattens
    top_k: int = 0  # keep the k most likely tokens (0 = all)
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p (Holtzman et al. 2020); 1 = all

    def untruncated(self) -> "Sampling":
        return replace(self, top_k=0, top_p=1.0)


def truncate(scores: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """`scores` (..., V) with everything outside the top-k / nucleus set to -inf (the best token always
    stays); top-p applies to the distribution left after top-k, as in transformers' samplers."""
    if top_k and top_k < scores.shape[-1]:
        kth = scores.topk(top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        outside = (probs.cumsum(dim=-1) - probs) >= top_p  # the mass before a token already reaches p
        scores = scores.masked_fill(outside.scatter(-1, order, outside), float("-inf"))
    return scores


def _dense(scores: torch.Tensor, sampling: Sampling, generator) -> torch.Tensor:
    """(N,) draws from (N, V) scores: truncation on the whole vocabulary, then Gumbel-max."""
    scores = truncate(scores, sampling.top_k, sampling.top_p)
    u = torch.rand(scores.shape, generator=generator, device=scores.device).clamp_(1e-20, 1.0)
    return (scores - torch.log(-torch.log(u))).argmax(dim=-1)


def _candidates(scores: torch.Tensor, sampling: Sampling, generator, tiers=CANDIDATES) -> torch.Tensor:
    """(N,) draws from (N, V) scores among the top candidates (CPU), exact as described above: rows whose
    nucleus the first tier of candidates does not hold try the next tier, then the whole vocabulary."""
    V = scores.shape[-1]
    if not sampling.top_k and sampling.top_p >= 1.0:
        return _dense(scores, sampling, generator)
    k = min(sampling.top_k or tiers[0], V)
    values, index = scores.topk(k, dim=-1)  # (N, k), most likely first
    keep = torch.isfinite(values)
    short = None
    if sampling.top_p < 1.0:
        total = torch.logsumexp(values if sampling.top_k else scores, dim=-1, keepdim=True)
        probs = (values - total).exp()
        keep &= (probs.cumsum(dim=-1) - probs) < sampling.top_p
        keep[:, 0] = True
        if not sampling.top_k and k < V:
            short = probs.sum(dim=-1) < sampling.top_p  # the nucleus reaches beyond these candidates
    weights = values.masked_fill(~keep, float("-inf")).softmax(dim=-1)
    tokens = index.gather(1, torch.multinomial(weights, 1, generator=generator)).squeeze(1)
    if short is not None and bool(short.any()):
        rows = short.nonzero().squeeze(1)
        rest = (
            _candidates(scores[rows], sampling, generator, tiers[1:])
            if len(tiers) > 1
            else _dense(scores[rows], sampling, generator)
        )
        tokens[rows] = rest
    return tokens


def draw(logp: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None):
    """(tokens (...,), their log-probability under `logp`) for log-probabilities `logp` (..., V).

    The confidence the strategies rank by is the model's own log-probability of the drawn token, before
    temperature and truncation, as in mask-predict and MaskGIT.
    """
    if sampling.temperature <= 0:
        tokens = logp.argmax(dim=-1)
    else:
        scores = (logp / sampling.temperature).reshape(-1, logp.shape[-1])
        sample = _dense if logp.is_cuda else _candidates
        tokens = sample(scores, sampling, generator).reshape(logp.shape[:-1])
    return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
