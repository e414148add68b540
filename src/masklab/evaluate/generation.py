"""Sample quality of free generation: nucleus samples from held-out prompts, scored for diversity.

- distinct-n (Li et al. 2016, arXiv 1510.03055): distinct n-grams / all n-grams over every sample;
  higher is more varied.
- repetition: seq-rep-4 (Welleck et al. 2019, arXiv 1908.04319): per sample, 1 - distinct 4-grams /
  all 4-grams, averaged; lower is better (a looping model scores near 1).

Decoders continue the prompt (transformers `generate`, KV cache, top-p). An encoder-decoder trained on
span corruption writes the span after a sentinel placed at the end of the prompt: what it was trained
to produce, so its samples are short by nature. A masked LM's own generation (iterative unmasking)
comes with masklab's generation package.
"""

from __future__ import annotations

import numpy as np
import torch

from masklab.data.tokenizer import sentinel_ids
from masklab.runtime import device_of


def distinct_n(samples: list[list[int]], n: int) -> float:
    grams = [tuple(s[i : i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


def repetition(samples: list[list[int]], n: int = 4) -> float:
    rates = []
    for s in samples:
        grams = [tuple(s[i : i + n]) for i in range(len(s) - n + 1)]
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return float(np.mean(rates)) if rates else 0.0


@torch.no_grad()
def sample(
    model, tokenizer, prompts: list[str], max_new_tokens: int = 40, top_p: float = 0.9, seed: int = 0
) -> list[list[int]]:
    """Generated token ids (prompt excluded, special tokens dropped) per prompt."""
    model.eval()
    device = device_of(model)
    special = set(tokenizer.all_special_ids)
    out = []
    for k, prompt in enumerate(prompts):
        torch.manual_seed(seed + k)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        common = dict(
            do_sample=True, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
        )
        if model.config.is_encoder_decoder:
            sentinels = sentinel_ids(tokenizer)
            source = torch.tensor([[tokenizer.cls_token_id, *ids, sentinels[0], tokenizer.sep_token_id]], device=device)
            generated = model.generate(
                input_ids=source,
                decoder_start_token_id=tokenizer.pad_token_id,
                eos_token_id=[tokenizer.sep_token_id, *sentinels[1:2]],
                **common,
            )[0].tolist()
        else:
            source = torch.tensor([[tokenizer.cls_token_id, *ids]], device=device)
            generated = model.generate(
                input_ids=source, attention_mask=torch.ones_like(source), eos_token_id=tokenizer.sep_token_id, **common
            )[0, source.shape[1] :].tolist()
        out.append([t for t in generated if t not in special])
    return out


def generation_metrics(
    model, tokenizer, prompts: list[str], max_new_tokens: int = 40, top_p: float = 0.9, seed: int = 0, examples: int = 3
) -> dict:
    samples = sample(model, tokenizer, prompts, max_new_tokens, top_p, seed)
    return {
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "repetition_4": repetition(samples),
        "mean_generated_tokens": float(np.mean([len(s) for s in samples])) if samples else 0.0,
        "generation_samples": len(samples),
        "generation_top_p": top_p,
        "generation_examples": [f"{p} ⟶ {tokenizer.decode(s)}" for p, s in zip(prompts[:examples], samples)],
    }
