"""`iterative_unmask`: the one generation loop every strategy runs through.

Only the editable positions of a row are its *slots* (B, M); the rest of the row (prompt, template
text, [CLS]/[SEP], padding) is context and never changes. Every step: show the masked slots as
[MASK], ask the predictor for log-probabilities at the masked slots, apply the constraint processors,
draw a token for each, then let the strategy decide which slots stay (or become) masked.

On a GPU every slot is predicted and drawn at every step (the unmasked ones' draws are discarded):
shapes are fixed for the whole loop and nothing is read back to the host between steps, so the steps
queue without waiting. On a CPU, where a host read costs nothing and the vocabulary projection and the
draw dominate a step, only the masked slots are predicted and drawn (one-at-a-time strategies predict
one slot per row instead of all M).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from masklab.errors import UserError
from masklab.generate.sampling import Sampling, draw
from masklab.generate.strategies import State, Strategy, lowest
from masklab.registry import build

# (log-probabilities (K, V), their rows (K,), their positions (K,)) -> restricted log-probabilities
Processor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class UnmaskResult:
    ids: torch.Tensor  # (B, T) the input with every editable position filled
    steps: int
    predicted: torch.Tensor  # (steps, B) slots drawn at each step (the ones that were masked)
    committed: torch.Tensor  # (steps, B) slots that left the mask at each step and were not re-masked
    trajectory: list[torch.Tensor] | None  # with record=True: (B, T) ids after each step, [MASK] where still masked


def slot_positions(editable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions (B, M), valid (B, M)): each row's editable positions in order, padded with T (a spare column)."""
    B, T = editable.shape
    counts = editable.sum(dim=1)
    M = int(counts.max())  # the one host read: the slot count fixes every shape of the loop
    order = torch.argsort((~editable).to(torch.int8), dim=1, stable=True)[:, :M]
    valid = torch.arange(M, device=editable.device).unsqueeze(0) < counts.unsqueeze(1)
    return torch.where(valid, order, torch.full_like(order, T)), valid


def resolve_strategy(strategy: str | Strategy, settings: dict | None = None) -> Strategy:
    return strategy if isinstance(strategy, Strategy) else build("unmask", strategy, **(settings or {}))


def default_steps(strategy: Strategy, slots: int) -> int:
    return slots if strategy.one_at_a_time else strategy.default_steps


@torch.no_grad()
def iterative_unmask(
    predictor,
    ids: torch.Tensor,
    editable: torch.Tensor,
    strategy: str | Strategy = "mask-predict",
    steps: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    mask_token_id: int,
    attention_mask: torch.Tensor | None = None,
    forbidden: torch.Tensor | None = None,
    processors: Sequence[Processor] = (),
    settings: dict | None = None,
    record: bool = False,
    sparse: bool | None = None,
    on_step: Callable[[int, int, torch.Tensor], None] | None = None,
) -> UnmaskResult:
    """Fill the `editable` (B, T) positions of `ids` (B, T) with a masked LM (`predictor`, see predictors.py).

    `strategy` is a registered name (with `settings`, e.g. {"k": 2} for gibbs) or a Strategy; `steps` = 0
    takes the strategy's default. Whatever `ids` holds at editable positions is ignored: they start masked.
    `forbidden` (V,) bool marks tokens never drawn (special tokens; [MASK] always); `processors` restrict
    further (constraints.py). `sparse` (default: on a CPU) predicts only the masked slots. `on_step(step,
    steps, ids)` sees the (B, T) ids after each step, [MASK] where still masked (a page streams them).
    """
    strategy = resolve_strategy(strategy, settings)
    positions, valid = slot_positions(editable)
    B, M = valid.shape
    steps = steps or default_steps(strategy, M)
    if steps < 1:
        raise UserError(f"steps must be >= 1 (got {steps})")
    strategy.check(steps, M)
    base = Sampling(temperature, top_k, top_p)
    attention_mask = torch.ones_like(ids) if attention_mask is None else attention_mask
    work = torch.cat([ids, ids[:, :1]], dim=1)  # column T absorbs the writes of padding slots
    original = work.gather(1, positions)
    tokens = original.clone()
    masked = valid.clone()
    confidence = torch.zeros(B, M, device=ids.device)
    counts = valid.sum(dim=1)
    sparse = ids.device.type == "cpu" if sparse is None else sparse
    every_row = torch.arange(B, device=ids.device).repeat_interleave(M)  # dense: every slot is asked, every step
    every_position = positions.reshape(-1)
    never_bias = None
    predicted_log, committed_log, trajectory = [], [], [] if record else None
    for step in range(steps):
        work.scatter_(1, positions, torch.where(valid, torch.where(masked, mask_token_id, tokens), original))
        if sparse:
            rows, slots = (masked & valid).nonzero(as_tuple=True)
            at = positions[rows, slots]
        else:
            rows, at = every_row, every_position
        if not len(at):  # nothing masked in any row (a repair round for other batches' rows)
            predicted_log.append(torch.zeros_like(counts))
            committed_log.append(torch.zeros_like(counts))
            if record:
                trajectory.append(work[:, :-1].clone())
            if on_step is not None:
                on_step(step, steps, work[:, :-1])
            continue
        logp = predictor(work[:, :-1], attention_mask, rows, at)  # (K, V)
        if never_bias is None:
            never = torch.zeros(logp.shape[-1], dtype=torch.bool, device=ids.device)
            if forbidden is not None:
                never |= forbidden.to(ids.device)
            never[mask_token_id] = True
            never_bias = torch.zeros(logp.shape[-1], device=ids.device).masked_fill_(never, float("-inf"))
        logp += never_bias
        for process in processors:
            logp = process(logp, rows, at)
        drawn_flat, confidence_flat = draw(logp, strategy.sampling(step, steps, base), generator)
        if sparse:
            drawn = tokens.index_put((rows, slots), drawn_flat)
            drawn_confidence = confidence.index_put((rows, slots), confidence_flat)
        else:
            drawn, drawn_confidence = drawn_flat.reshape(B, M), confidence_flat.reshape(B, M)
        tokens = torch.where(masked, drawn, tokens)
        confidence = torch.where(masked, drawn_confidence, confidence)
        eligible, score, keep = strategy.select(step, steps, State(masked, confidence, valid, counts, generator))
        eligible = eligible & valid
        still = (masked & valid & ~eligible) | lowest(score, eligible, keep)
        predicted_log.append((masked & valid).sum(dim=1))
        committed_log.append((masked & valid & ~still).sum(dim=1))
        masked = still
        if record or on_step is not None:
            shown = work.scatter(
                1, positions, torch.where(valid, torch.where(masked, mask_token_id, tokens), original)
            )[:, :-1]
            if record:
                trajectory.append(shown.clone())
            if on_step is not None:
                on_step(step, steps, shown)
    work.scatter_(1, positions, torch.where(valid, tokens, original))
    return UnmaskResult(work[:, :-1].clone(), steps, torch.stack(predicted_log), torch.stack(committed_log), trajectory)
