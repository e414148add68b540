"""Generation with a masked LM: iterative unmasking and everything around it.

sampling.py     temperature / top-k / top-p draws, on the device
predictors.py   log-probabilities at positions: masked LM, causal LM, and their product of experts
strategies.py   mask-predict, gibbs, left-to-right, random-order, maskgit, diffusion (`@register("unmask", NAME)`)
unmask.py       iterative_unmask: the one loop every strategy runs through
settings.py     a strategy's own settings as typed: KEY=VALUE pairs
template.py     templates with gaps ([MASK], [MASK]*3, [MASK]*2-6), continuations, rendering byte for byte
constraints.py  banned words, allowed vocabulary, word starts: hold exactly in every sample
fusion.py       the causal LM proposes, the masked LM rescores (pseudo-log-likelihood)
quality.py      judge perplexity, unigram entropy, distinct-n, repetition, self-BLEU, exactness
fillmask.py     the top-k fillers of each [MASK] in a text, in the hub's fill-mask schema
run.py          `masklab generate`: requests -> batches -> samples (+ trajectories, quality)
"""

from masklab.generate import strategies  # noqa: F401  (registers the strategies)
from masklab.generate.sampling import Sampling
from masklab.generate.unmask import UnmaskResult, iterative_unmask

__all__ = ["Sampling", "UnmaskResult", "iterative_unmask"]
