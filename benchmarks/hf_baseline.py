"""The Hugging Face baselines the benchmarks compare against: what a user would otherwise run.

Every baseline is the Trainer's inner loop written out: examples (lists of token ids) -> the collator ->
`model(**batch).loss` (the model's own dense loss) -> backward -> clip the gradient norm at 1.0 ->
`torch.optim.AdamW` at lr x the linear schedule's factor; bf16 through `torch.autocast` as the Trainer
does on CPU, fp32 otherwise.

- mlm (`HFBaseline`, the `run_mlm` path): `BertForMaskedLM` with its default config (dropout 0.1, SDPA
  attention), `DataCollatorForLanguageModeling(mlm_probability=0.15)`, AdamW with weight decay 0.01.
  The dense loss projects every position onto the vocabulary.
- clm (`HFCausalBaseline`, the `run_clm` path): a given `*ForCausalLM` (the benchmark passes masklab's Llama
  built with SDPA attention, transformers' default), `DataCollatorForLanguageModeling(tokenizer, mlm=False)`
  over packed blocks as run_clm's `group_texts` makes them, AdamW at the Trainer's defaults.
- seq2seq (`HFSeq2SeqBaseline`): a given `T5ForConditionalGeneration`, fed by `T5SpanCollator`, the span
  corruption a user ports from `run_t5_mlm_flax.py`, AdamW at the Trainer's defaults.

Trainer defaults (transformers 5 with torch >= 2.8): lr 5e-5, weight decay 0, betas (0.9, 0.999), eps 1e-8,
`optim=adamw_torch_fused` (torch's fused AdamW), no warm-up, linear decay, max_grad_norm 1.0.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

TRAINER_ADAMW = dict(lr=5e-5, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8)


class HFLoop:
    """One optimizer step of the Trainer's loop: collator -> model(**batch).loss -> backward -> clip -> AdamW."""

    def __init__(self, model, collator, optimizer: torch.optim.Optimizer, precision: str):
        self.model, self.collator, self.optimizer = model.train(), collator, optimizer
        self.lr = optimizer.param_groups[0]["lr"]
        self.autocast = (
            (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
        )

    def step(self, blocks, lr_factor: float = 1.0) -> float:
        """One optimizer step on a (B, T) array of token blocks; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * lr_factor
        inputs = self.collator([{"input_ids": row.tolist()} for row in blocks])
        with self.autocast():
            loss = self.model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.item()


class HFBaseline(HFLoop):
    """run_mlm: a fresh `BertForMaskedLM` of the given shape."""

    def __init__(
        self,
        tokenizer,
        layers: int,
        hidden: int,
        heads: int,
        inter: int,
        vocab_size: int,
        precision: str,
        lr: float = 5e-4,
        seed: int = 0,
    ):
        from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling

        torch.manual_seed(seed)
        model = BertForMaskedLM(
            BertConfig(
                vocab_size=vocab_size,
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=inter,
            )
        )
        super().__init__(
            model,
            DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
            torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01),
            precision,
        )


def trainer_adamw(model) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), fused=True, **TRAINER_ADAMW)


class HFCausalBaseline(HFLoop):
    """run_clm: the model's own shifted next-token loss from `labels` (a copy of input_ids)."""

    def __init__(self, model, tokenizer, precision: str):
        from transformers import DataCollatorForLanguageModeling

        super().__init__(model, DataCollatorForLanguageModeling(tokenizer, mlm=False), trainer_adamw(model), precision)


class HFSeq2SeqBaseline(HFLoop):
    """T5 span corruption: the model's own decoder loss from `labels`."""

    def __init__(self, model, tokenizer, precision: str, seed: int = 0):
        collator = T5SpanCollator(tokenizer, decoder_start_token_id=model.config.decoder_start_token_id, seed=seed)
        super().__init__(model, collator, trainer_adamw(model), precision)


class T5SpanCollator:
    """`FlaxDataCollatorForT5MLM` of transformers' examples/flax/language-modeling/run_t5_mlm_flax.py, ported
    to numpy/PyTorch as a user would: `random_spans_noise_mask` per example (a Python loop over the batch:
    shuffle, cumsum and unique per row), then `create_sentinel_ids` and `filter_input_ids` over the batch.

    The whole block may be corrupted (no position is protected) and sentinels are looked up by name
    (`<extra_id_k>` for the k-th span) instead of counted down from the end of the vocabulary. Every row
    has the same counts, so the batch needs no padding and no attention mask."""

    def __init__(
        self,
        tokenizer,
        noise_density: float = 0.15,
        mean_noise_span_length: float = 3.0,
        decoder_start_token_id: int | None = None,
        seed: int = 0,
    ):
        from masklab.data.tokenizer import sentinel_ids

        self.noise_density, self.mean_noise_span_length = noise_density, mean_noise_span_length
        self.sentinels = np.asarray(sentinel_ids(tokenizer), dtype=np.int64)
        self.eos_id = tokenizer.eos_token_id
        self.start_id = tokenizer.pad_token_id if decoder_start_token_id is None else decoder_start_token_id
        self.rng = np.random.default_rng(seed)

    def __call__(self, examples: list[dict]) -> dict:
        input_ids = np.array([e["input_ids"] for e in examples], dtype=np.int64)
        batch_size, length = input_ids.shape
        mask_indices = np.asarray([self.random_spans_noise_mask(length) for _ in range(batch_size)])
        inputs = self.filter_input_ids(input_ids, self.create_sentinel_ids(mask_indices.astype(np.int8)))
        labels = self.filter_input_ids(input_ids, self.create_sentinel_ids((~mask_indices).astype(np.int8)))
        decoder = np.concatenate([np.full((batch_size, 1), self.start_id, dtype=np.int64), labels[:, :-1]], axis=1)
        return {
            "input_ids": torch.from_numpy(inputs),
            "labels": torch.from_numpy(labels),
            "decoder_input_ids": torch.from_numpy(decoder),
        }

    def create_sentinel_ids(self, mask_indices: np.ndarray) -> np.ndarray:
        start_indices = mask_indices - np.roll(mask_indices, 1, axis=-1) * mask_indices
        start_indices[:, 0] = mask_indices[:, 0]
        sentinel_ids = np.where(start_indices != 0, np.cumsum(start_indices, axis=-1), start_indices)
        sentinel_ids = np.where(sentinel_ids != 0, self.sentinels[sentinel_ids - 1], 0)
        sentinel_ids -= mask_indices - start_indices  # -1: corrupted tokens after a span's first, dropped below
        return sentinel_ids

    def filter_input_ids(self, input_ids: np.ndarray, sentinel_ids: np.ndarray) -> np.ndarray:
        batch_size = input_ids.shape[0]
        input_ids_full = np.where(sentinel_ids != 0, sentinel_ids, input_ids)
        input_ids = input_ids_full[input_ids_full >= 0].reshape((batch_size, -1))
        return np.concatenate([input_ids, np.full((batch_size, 1), self.eos_id, dtype=np.int64)], axis=-1)

    def random_spans_noise_mask(self, length: int) -> np.ndarray:
        num_noise_tokens = int(np.round(length * self.noise_density))
        num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
        num_nonnoise_tokens = length - num_noise_tokens
        num_noise_spans = max(
            int(np.round(min(num_noise_tokens, num_nonnoise_tokens) / self.mean_noise_span_length)), 1
        )

        def _random_segmentation(num_items: int, num_segments: int) -> np.ndarray:
            mask_indices = np.arange(num_items - 1) < (num_segments - 1)
            self.rng.shuffle(mask_indices)
            first_in_segment = np.pad(mask_indices, [[1, 0]])
            segment_id = np.cumsum(first_in_segment)
            _, segment_length = np.unique(segment_id, return_counts=True)
            return segment_length

        noise_span_lengths = _random_segmentation(num_noise_tokens, num_noise_spans)
        nonnoise_span_lengths = _random_segmentation(num_nonnoise_tokens, num_noise_spans)
        interleaved = np.reshape(np.stack([nonnoise_span_lengths, noise_span_lengths], axis=1), [num_noise_spans * 2])
        span_starts = np.cumsum(interleaved)[:-1]
        span_start_indicator = np.zeros((length,), dtype=np.int8)
        span_start_indicator[span_starts] = True
        span_segment = np.cumsum(span_start_indicator)
        return np.equal(span_segment % 2, 1)
