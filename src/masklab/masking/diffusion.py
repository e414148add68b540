"""Masked-diffusion training as a masking option: a masking rate drawn per block, and the ELBO's weights.

The forward process of absorbing-state masked diffusion (MDLM, Sahoo et al. 2024, arXiv 2406.07524;
LLaDA, Nie et al. 2025, arXiv 2502.09992) hides each token independently with probability m(t) at time
t in [0, 1], m(0) = 0 and m(1) = 1 (MDLM writes alpha_t = 1 - m(t) for the share kept). Its negative
ELBO, in continuous time, is (MDLM eq. 10, with alpha_t' = -m'(t))

    L = E_{t ~ U[0,1]} [ m'(t) / m(t) * sum_{l masked at t} -log p(x_l | x_t) ]

per sequence. Dividing by the sequence length L_b (LLaDA's per-token normalisation) and noting that
masklab's exact-count selection hides n_b = round(m(t) L_b) tokens, the weight m'(t) / (m(t) L_b) of a
masked token is m'(t) / n_b up to that rounding. masklab uses the realised count n_b: the loss of a
block is m'(t) times the mean cross-entropy over its masked tokens, which keeps the estimator's variance
bounded when t is small (one masked token no longer weighs up to 1/epsilon). For the schedules here:

    linear  m(t) = t                m'(t) = 1                 weight per block: 1 (MDLM's log-linear noise; LLaDA)
    cosine  m(t) = 1 - cos(pi t/2)  m'(t) = pi/2 sin(pi t/2)  (MaskGIT's cosine, as a training schedule)

Time is drawn as t = 1 - (1 - epsilon) u with u ~ U[0, 1), so t lies in (epsilon, 1]; every masking
strategy keeps working because only the rate changes: units (words, spans, phrases) fill a per-block budget.
"""

from __future__ import annotations

import math

import numpy as np

# schedule -> (masked share m(t), its derivative m'(t)), vectorised over numpy arrays
SCHEDULES = {
    "linear": (lambda t: t, lambda t: np.ones_like(t)),
    "cosine": (lambda t: 1.0 - np.cos(0.5 * math.pi * t), lambda t: 0.5 * math.pi * np.sin(0.5 * math.pi * t)),
}


def draw_times(u: np.ndarray, epsilon: float) -> np.ndarray:
    """Times in (epsilon, 1] from uniforms in [0, 1)."""
    return 1.0 - (1.0 - epsilon) * u


def rates_and_weights(u: np.ndarray, schedule: str, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(masking rate m(t), ELBO factor m'(t)) per block, from one uniform per block."""
    share, derivative = SCHEDULES[schedule]
    t = draw_times(u, epsilon)
    return np.clip(share(t), 1e-6, 1.0), derivative(t)


def rate_density(rate: np.ndarray, schedule: str, epsilon: float) -> np.ndarray:
    """Density of the per-block masking rate r = m(t) for t ~ U(epsilon, 1]: 1 / (m'(t) (1 - epsilon))."""
    if schedule == "linear":
        return np.where((rate > epsilon) & (rate <= 1.0), 1.0 / (1.0 - epsilon), 0.0)
    t = 2.0 / math.pi * np.arccos(np.clip(1.0 - rate, -1.0, 1.0))
    low = SCHEDULES[schedule][0](np.asarray(epsilon))
    density = 1.0 / (SCHEDULES[schedule][1](t) * (1.0 - epsilon))
    return np.where((rate > low) & (rate <= 1.0), density, 0.0)
