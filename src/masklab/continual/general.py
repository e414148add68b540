"""General knowledge before and after each stage: masked-LM loss on held-out general text with fixed
masks, and pseudo-perplexity on a sample of its sentences (Salazar et al. 2020, arXiv 1910.14659).

A classifier has no MLM head, so the encoder is scored through the start's: the head of the start
checkpoint, with its decoder tied to the current word embeddings. A start without one (a sentence
encoder, a random init) gets a head fitted once on its frozen encoder (cached by start and corpus).
Adapters are scored as they act (LoRA / IA3 in place, the prompt in the input): scored without them,
the change would be zero by construction. The masks are drawn with a fixed seed, so every stage,
seed and method is scored on the same positions.
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import AutoModelForMaskedLM

from masklab.data.sources import iter_documents
from masklab.errors import UserError
from masklab.fsutil import atomic_path
from masklab.objectives.mlm import MLM_PARTS
from masklab.runtime import autocast_context, default_cache_root, device_of

MASK_SEED = 1234  # the held-out masks: the same for every run
HELD_OUT_EVERY = 4  # every 4th general-text line is held out for scoring; the rest fit the head / feed mlm-mix
HEAD_LR, HEAD_BATCH, HEAD_MASK_DRAWS = 1e-3, 64, 4


@dataclass
class GeneralText:
    train_texts: list[str]
    eval_batches: list[dict]  # {"input_ids", "attention_mask", "labels"}: fixed [MASK]s, labels -100 elsewhere
    pll_ids: list[list[int]]  # sentences (with special tokens) whose pseudo-log-likelihood is computed


def _lines(spec: str) -> list[str]:
    out = []
    for doc in iter_documents(spec):
        out += [" ".join(line.split()) for line in doc.splitlines() if len(line.split()) >= 3]
    return out


def _mask(
    ids: list[int], special: set[int], mask_id: int, rate: float, generator: torch.Generator
) -> tuple[list[int], list[int]]:
    """All-[MASK] corruption of `rate` of the non-special tokens (at least one)."""
    candidates = [i for i, t in enumerate(ids) if t not in special]
    k = max(1, round(rate * len(candidates)))
    chosen = {candidates[i] for i in torch.randperm(len(candidates), generator=generator)[:k].tolist()}
    return [mask_id if i in chosen else t for i, t in enumerate(ids)], [
        t if i in chosen else -100 for i, t in enumerate(ids)
    ]


def _pad(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict:
    width = max(len(ids) for ids, _ in rows)
    return {
        "input_ids": torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in rows]),
        "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows]),
    }


def load_general_text(
    spec: str, tokenizer, max_length: int, n_eval: int, n_pll: int, rate: float = 0.15
) -> GeneralText:
    lines = _lines(spec)
    held = lines[::HELD_OUT_EVERY]
    train = [t for i, t in enumerate(lines) if i % HELD_OUT_EVERY]
    if len(held) < 8 or not train:
        raise UserError(
            f"general_corpus {spec!r} has {len(lines)} lines of 3+ words; it needs at least "
            f"{8 * HELD_OUT_EVERY}. Give a longer general text (a .txt file, one sentence per line)"
        )
    special = set(tokenizer.all_special_ids)
    generator = torch.Generator().manual_seed(MASK_SEED)
    encoded = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in held[:n_eval]]
    rows = [_mask(ids, special, tokenizer.mask_token_id, rate, generator) for ids in encoded]
    batches = [_pad(rows[i : i + 32], tokenizer.pad_token_id) for i in range(0, len(rows), 32)]
    pll = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in held[-n_pll:]] if n_pll else []
    return GeneralText(train, batches, pll)


class GeneralProbe:
    """The start's masked-LM head over the continual model's current encoder."""

    def __init__(self, head_model, model_type: str):
        self.model = head_model  # a *ForMaskedLM whose encoder is not used: only its head modules
        self.parts = MLM_PARTS[model_type][1]

    def logits(self, cm, task: int, batch: dict) -> torch.Tensor:
        device = device_of(cm)
        self.model.to(device)
        self.model.get_output_embeddings().weight = cm.encoder.get_input_embeddings().weight  # the current embeddings
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = cm.hidden_states(task, batch)  # (B, T, H)
        selected = batch["labels"] != -100
        hidden = hidden[selected]  # (M, H): the head runs at the masked positions only
        for name in self.parts:
            hidden = getattr(self.model, name)(hidden)
        return hidden  # (M, V)

    @torch.no_grad()
    def masked_loss(self, cm, task: int, batches: list[dict], precision: str) -> float:
        was = cm.training
        cm.eval()
        total, count = 0.0, 0
        for batch in batches:
            with autocast_context(precision, device_of(cm).type):
                logits = self.logits(cm, task, batch)
            targets = batch["labels"][batch["labels"] != -100].to(logits.device)
            total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
            count += int(targets.numel())
        cm.train(was)
        return total / max(count, 1)

    @torch.no_grad()
    def pseudo_perplexity(self, cm, task: int, sentences: list[list[int]], tokenizer, precision: str) -> float | None:
        """exp(-Σ log p(w_i | rest) / N) over every non-special token of every sentence, one [MASK] at a time."""
        if not sentences:
            return None
        special = set(tokenizer.all_special_ids)
        rows = []
        for ids in sentences:
            for i, t in enumerate(ids):
                if t not in special:
                    rows.append(
                        (
                            [tokenizer.mask_token_id if j == i else x for j, x in enumerate(ids)],
                            [t if j == i else -100 for j in range(len(ids))],
                        )
                    )
        was = cm.training
        cm.eval()
        total = 0.0
        for start in range(0, len(rows), 64):
            batch = _pad(rows[start : start + 64], tokenizer.pad_token_id)
            with autocast_context(precision, device_of(cm).type):
                logits = self.logits(cm, task, batch)
            targets = batch["labels"][batch["labels"] != -100].to(logits.device)
            total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        cm.train(was)
        return math.exp(total / max(len(rows), 1))


def _head_state(model) -> dict:
    prefix = model.base_model_prefix + "."
    return {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}


def start_head(
    cm, source: str, text: GeneralText, tokenizer, steps: int, max_length: int, precision: str, show_progress: bool
) -> tuple[GeneralProbe, str]:
    """The start's MLM head (from its checkpoint, else fitted on the frozen start encoder) and where it came from."""

    model_type = cm.encoder.config.model_type
    if model_type not in MLM_PARTS:
        raise UserError(
            f"general-knowledge scoring knows the MLM heads of {', '.join(MLM_PARTS)}, not {model_type}; "
            "set general_corpus= (empty) to skip it"
        )
    config = copy.deepcopy(cm.tasks[0].config)
    head = None
    if Path(source).is_dir():
        loaded, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True)
        prefix = loaded.base_model_prefix + "."
        if not [k for k in info["missing_keys"] if not k.startswith(prefix)]:
            head, origin = loaded, "the start checkpoint's MLM head"
    if head is None:
        head = AutoModelForMaskedLM.from_config(config)
        digest = hashlib.sha256(
            f"{source}|{len(text.train_texts)}|{text.train_texts[:3]}|{steps}|{max_length}".encode()
        ).hexdigest()[:16]
        cached = default_cache_root() / "continual-mlm-heads" / f"{digest}.safetensors"
        if Path(source).is_dir() and cached.exists():
            head.load_state_dict(load_file(cached), strict=False)
        else:
            _fit_head(head, cm, text, tokenizer, steps, max_length, precision, show_progress)
            if Path(source).is_dir():  # a random start differs per seed: never cached
                cached.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(cached) as tmp:  # concurrent trials read whole files only
                    save_file({k: v.contiguous().clone() for k, v in _head_state(head).items()}, str(tmp))
        origin = f"fitted on the frozen start encoder ({steps} steps on general_corpus)"
    setattr(head, head.base_model_prefix, torch.nn.Module())  # only the head is used: drop its copy of the encoder
    return GeneralProbe(head, model_type), origin


def _fit_head(
    head, cm, text: GeneralText, tokenizer, steps: int, max_length: int, precision: str, show_progress: bool
) -> None:
    """Train the head alone on the frozen encoder's states at masked positions (computed once, several mask draws)."""

    parts = MLM_PARTS[cm.encoder.config.model_type][1]
    special = set(tokenizer.all_special_ids)
    generator = torch.Generator().manual_seed(0)
    encoded = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in text.train_texts]
    features, targets = [], []
    cm.eval()
    device = device_of(cm)
    head.to(device)
    with torch.no_grad():
        for _ in range(HEAD_MASK_DRAWS):
            rows = [_mask(ids, special, tokenizer.mask_token_id, 0.15, generator) for ids in encoded]
            for i in range(0, len(rows), 64):
                batch = {k: v.to(device) for k, v in _pad(rows[i : i + 64], tokenizer.pad_token_id).items()}
                with autocast_context(precision, device.type):
                    hidden = cm.hidden_states(0, batch)
                selected = batch["labels"] != -100
                features.append(hidden[selected].float())
                targets.append(batch["labels"][selected])
    cm.train()
    features, targets = torch.cat(features), torch.cat(targets)
    head.get_output_embeddings().weight = cm.encoder.get_input_embeddings().weight
    params = [
        p
        for n, p in head.named_parameters()
        if not n.startswith(head.base_model_prefix + ".") and p is not head.get_output_embeddings().weight
    ]
    optimizer = torch.optim.AdamW(params, lr=HEAD_LR, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    for _ in tqdm(range(steps), desc="fitting the start's MLM head", disable=not show_progress):
        idx = torch.randint(len(targets), (HEAD_BATCH * 8,), generator=generator).to(device)
        hidden = features[idx]
        for name in parts:
            hidden = getattr(head, name)(hidden)
        loss = F.cross_entropy(hidden.float(), targets[idx])
        optimizer.zero_grad()
        loss.backward()
        with torch.no_grad():  # the embeddings are the encoder's: fitting the head must not move them
            cm.encoder.get_input_embeddings().weight.grad = None
        optimizer.step()
