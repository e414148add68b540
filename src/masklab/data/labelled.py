"""Labelled examples as model inputs: encoding, padding, and a deterministic stream of training batches.

Training batch m is a pure function of (seed, m): epoch e is the (e+1)-th `torch.randperm` of one
generator seeded with `seed`, cut into ceil(N / B) batches (the last one smaller), so a resumed
fine-tuning run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from masklab.data.tasks import Split, Task
from masklab.errors import UserError

PAD_FILL = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0, "labels": -100}  # None: the tokenizer's pad id


def encode(task: Task, split: Split, tokenizer, max_length: int) -> list[dict]:
    """Token ids per example; token tasks label each word's first sub-token and ignore the rest (-100)."""
    labels = task.label_ids(split)
    if task.kind == "token":
        if not tokenizer.is_fast:
            raise UserError("token classification needs a fast tokenizer (tokenizer.json) to align tags with sub-words")
        enc = tokenizer(split.texts, is_split_into_words=True, truncation=True, max_length=max_length)
        out = []
        for i, tags in enumerate(labels):
            previous, aligned = None, []
            for word in enc.word_ids(i):
                aligned.append(tags[word] if word is not None and word != previous else -100)
                previous = word
            out.append({k: enc[k][i] for k in enc.keys()} | {"labels": aligned})
        return out
    enc = tokenizer(split.texts, split.pairs, truncation=True, max_length=max_length)
    return [{k: enc[k][i] for k in enc.keys()} | {"labels": labels[i]} for i in range(len(labels))]


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest example of the batch: ids with [PAD], masks with 0, token labels with -100."""
    width = max(len(e.get("input_ids", ())) for e in examples)
    batch = {}
    for key in examples[0]:
        if key == "features":  # cached encoder outputs (T, H) per example
            batch[key] = torch.nn.utils.rnn.pad_sequence([e[key] for e in examples], batch_first=True)
        elif key == "labels" and not isinstance(examples[0][key], list):
            batch[key] = torch.tensor([e[key] for e in examples])
        else:
            fill = pad_id if PAD_FILL[key] is None else PAD_FILL[key]
            batch[key] = torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in examples])
    return batch


def batches(examples: list[dict], size: int, pad_id: int) -> list[dict]:
    """Evaluation batches in order."""
    return [collate(examples[i : i + size], pad_id) for i in range(0, len(examples), size)]


def subsample(split: Split, n: int, seed: int) -> Split:
    """A seeded subsample of `n` examples (all of them when n is 0 or larger than the split)."""
    if not n or n >= len(split.texts):
        return split
    idx = sorted(torch.randperm(len(split.texts), generator=torch.Generator().manual_seed(seed))[:n].tolist())
    return Split(
        [split.texts[i] for i in idx],
        [split.labels[i] for i in idx],
        [split.pairs[i] for i in idx] if split.pairs is not None else None,
    )


def mean_length(examples: list[dict]) -> float:
    return (
        sum(len(e["input_ids"]) for e in examples) / max(len(examples), 1)
        if examples and "input_ids" in examples[0]
        else 1.0
    )


class LabelledBatches(Dataset):
    """Item m is training micro-batch m over `examples` (see the module docstring)."""

    def __init__(self, examples: list[dict], batch_size: int, seed: int, pad_id: int, length: int):
        self.examples = examples
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.length = length
        self.per_epoch = math.ceil(len(examples) / batch_size)
        self._generator = torch.Generator().manual_seed(seed)
        self._orders: list[list[int]] = []

    def __len__(self) -> int:
        return self.length

    def _order(self, epoch: int) -> list[int]:
        while len(self._orders) <= epoch:  # permutations come from one generator, in sequence
            self._orders.append(torch.randperm(len(self.examples), generator=self._generator).tolist())
        return self._orders[epoch]

    def __getitem__(self, m: int) -> dict:
        epoch, k = divmod(m, self.per_epoch)
        chunk = self._order(epoch)[k * self.batch_size : (k + 1) * self.batch_size]
        return collate([self.examples[i] for i in chunk], self.pad_id)
