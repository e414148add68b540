"""The Hugging Face baseline both benchmarks compare against: the `run_mlm` path.

`BertForMaskedLM` with its default config (dropout 0.1, SDPA attention), fed by
`DataCollatorForLanguageModeling(mlm_probability=0.15)` from lists of token ids, trained with
`torch.optim.AdamW` (weight decay 0.01), gradient clipping at 1.0, bf16 through `torch.autocast` as
the Trainer does on CPU. The dense loss (`model(**batch).loss`) projects every position onto the
vocabulary.
"""

from __future__ import annotations

import contextlib

import torch


class HFBaseline:
    def __init__(self, tokenizer, layers: int, hidden: int, heads: int, inter: int, vocab_size: int,
                 precision: str, lr: float = 5e-4, seed: int = 0):
        from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling

        torch.manual_seed(seed)
        self.model = BertForMaskedLM(BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                                num_attention_heads=heads, intermediate_size=inter))
        self.model.train()
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.01)
        self.lr = lr
        self.autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

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
