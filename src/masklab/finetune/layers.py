"""What fine-tuning changed, layer by layer, between the initial and the fine-tuned model.

- relative weight change ||W - W0|| / ||W0|| per layer group (all of a group's parameters as one vector);
- linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited", arXiv
  1905.00414) between the two models' token representations after each layer, on the same inputs:
  1 = the same representation up to rotation and scale, near 0 = unrelated.
Kovaleva et al. 2019 ("Revealing the Dark Secrets of BERT", arXiv 1908.08593) found that fine-tuning
changes the top layers most; these two measures test that on any run.
"""

from __future__ import annotations

import torch

from masklab.finetune.modes import Anatomy


def relative_weight_change(initial: dict[str, torch.Tensor], model, a: Anatomy) -> dict[str, float]:
    """||W - W0|| / ||W0|| for the embeddings and each encoder layer (the new head has no meaningful W0)."""
    params = dict(model.named_parameters())
    change = {}
    for group in ["embeddings", *a.layer_names()]:
        diff = sum(float((params[n].detach().double() - initial[n].double()).pow(2).sum()) for n in a.groups[group])
        base = sum(float(initial[n].double().pow(2).sum()) for n in a.groups[group])
        change[group] = (diff / base) ** 0.5 if base > 0 else 0.0
    return change


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same n examples: x (n, p), y (n, q).

    CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred X, Y (Kornblith et al. 2019, eq. 5 with
    linear kernels). Invariant to orthogonal transforms and isotropic scaling of either side."""
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norm) if norm > 0 else 0.0


@torch.no_grad()
def token_states(model, batches: list[dict], max_tokens: int) -> list[torch.Tensor]:
    """Per layer (embeddings output, then each encoder layer): the non-padding token vectors (N, H),
    at most `max_tokens` of them, in input order so two models' rows match."""
    was_training = model.training
    model.eval()
    layers: list[list[torch.Tensor]] = []
    taken = 0
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if model.config.is_encoder_decoder:  # encoder layers, then decoder layers on the shifted input
            out = model.base_model(
                **inputs, decoder_input_ids=model._shift_right(inputs["input_ids"]), output_hidden_states=True
            )
            states = (*out.encoder_hidden_states, *out.decoder_hidden_states[1:])
        else:
            states = model.base_model(**inputs, output_hidden_states=True).hidden_states  # L+1 x (B, T, H)
        keep = batch["attention_mask"].bool()
        if not layers:
            layers = [[] for _ in states]
        for i, h in enumerate(states):
            layers[i].append(h[keep].float())
        taken += int(keep.sum())
        if taken >= max_tokens:
            break
    model.train(was_training)
    return [torch.cat(chunks)[:max_tokens] for chunks in layers]


def layer_cka(initial_model, model, a: Anatomy, batches: list[dict], max_tokens: int = 4096) -> dict[str, float]:
    before = token_states(initial_model, batches, max_tokens)
    after = token_states(model, batches, max_tokens)
    names = ["embeddings", *a.layer_names()]
    return {name: linear_cka(x, y) for name, x, y in zip(names, before, after)}
