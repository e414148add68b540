"""Sequence-to-sequence pretraining on an encoder-decoder: T5's span corruption, or BART's text infilling.

Span corruption (Raffel et al. 2020, arXiv 1910.10683): `rate` of each block's tokens are corrupted in
spans of mean length `mean_span`. Like T5's `random_spans_noise_mask`, the number of corrupted tokens
and the number of spans are exact (round(n * rate), round(noise / mean_span)), and the block
alternates kept / corrupted segments starting with a kept one, so every batch has the same shapes
and nothing is padded:

    encoder  [CLS] kept_0 <extra_id_0> kept_1 <extra_id_1> ... [SEP]
    decoder  <extra_id_0> span_0 <extra_id_1> span_1 ... [SEP]

Text infilling (BART, Lewis et al. 2019, arXiv 1910.13461) hides each span behind one [MASK] and the
decoder writes the whole block back. Both draw from per-(seed, block, epoch) random streams, like the
masked LM's batcher, so a batch is a pure function of its index: exact resume, any worker count.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from masklab.config import Seq2SeqConfig
from masklab.errors import UserError
from masklab.masking import derive_seed
from masklab.registry import register


def span_counts(length: int, rate: float, mean_span: float) -> tuple[int, int]:
    """(corrupted tokens, spans) for `length` corruptible tokens: both exact, both >= 1."""
    noise = min(max(1, int(round(length * rate))), length - 1)
    spans = max(1, int(round(noise / mean_span)))
    return noise, min(spans, noise, length - noise)


def _segment_lengths(uniform: np.ndarray, total: int, parts: int) -> np.ndarray:
    """(B, parts) random compositions of `total` into `parts` positive lengths, from (B, total-1) uniforms:
    the `parts - 1` smallest-ranked of the `total - 1` gaps become the cut points."""
    B = len(uniform)
    if parts == 1:
        return np.full((B, 1), total, dtype=np.int64)
    cuts = np.sort(np.argpartition(uniform, parts - 2, axis=1)[:, :parts - 1], axis=1) + 1  # (B, parts-1) in 1..total-1
    edges = np.concatenate([np.zeros((B, 1), np.int64), cuts, np.full((B, 1), total, np.int64)], axis=1)
    return np.diff(edges, axis=1)


class SpanCorruptor:
    """(B, T) packed blocks -> {"input_ids", "decoder_input_ids", "labels"} with static shapes."""

    features: tuple[str, ...] = ()

    def __init__(self, cfg: Seq2SeqConfig, tokenizer, seed: int, seq_length: int):
        from masklab.data.tokenizer import sentinel_ids

        self.cfg, self.seed = cfg, seed
        self.content = seq_length - 1  # every token after the block's [CLS] may be corrupted
        if cfg.mean_span > self.content:
            raise UserError(f"seq2seq.mean_span={cfg.mean_span:g} is longer than a {seq_length}-token block; "
                            "lower seq2seq.mean_span or raise data.seq_length")
        self.noise, self.spans = span_counts(self.content, cfg.rate, cfg.mean_span)
        self.sentinels = np.asarray(sentinel_ids(tokenizer), dtype=np.int64)
        if cfg.corruption == "span" and len(self.sentinels) < self.spans:
            raise UserError(f"span corruption of {seq_length}-token blocks needs {self.spans} sentinel tokens "
                            f"(<extra_id_0> ...), the tokenizer has {len(self.sentinels)}; lower data.seq_length or "
                            "seq2seq.rate, raise seq2seq.mean_span, or let masklab train the tokenizer")
        self.mask_id = tokenizer.mask_token_id
        self.cls_id, self.eos_id, self.start_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id

    @property
    def lengths(self) -> tuple[int, int]:
        """(encoder, decoder) sequence lengths of every batch."""
        encoder = 1 + self.content - self.noise + self.spans + 1
        decoder = (self.noise + self.spans if self.cfg.corruption == "span" else self.content) + 1
        return encoder, decoder

    def attach(self, blocks, show_progress: bool = True) -> None:
        pass

    def rate_at(self, progress: float) -> float:
        return self.cfg.rate

    def _uniforms(self, block_ids, epochs) -> tuple[np.ndarray, np.ndarray]:
        passes = np.broadcast_to(np.asarray(epochs), (len(block_ids),))
        kept, noise = [], []
        for b, e in zip(block_ids, passes):
            rng = np.random.default_rng(derive_seed(self.seed, int(b), int(e), 0x5EA))
            kept.append(rng.random(self.content - self.noise - 1))
            noise.append(rng.random(self.noise - 1))
        return np.stack(kept).reshape(len(block_ids), -1), np.stack(noise).reshape(len(block_ids), -1)

    def corrupt(self, blocks: np.ndarray, block_ids, epochs=0) -> dict:
        blocks = np.asarray(blocks, dtype=np.int64)
        B = len(blocks)
        content = blocks[:, 1:]  # (B, n)
        u_kept, u_noise = self._uniforms(block_ids, epochs)
        kept = _segment_lengths(u_kept, self.content - self.noise, self.spans)
        noise = _segment_lengths(u_noise, self.noise, self.spans)
        lengths = np.stack([kept, noise], axis=2).reshape(B, -1)  # kept_0, noise_0, kept_1, noise_1, ...
        boundary = np.zeros((B, self.content + 1), np.int64)
        np.put_along_axis(boundary, np.cumsum(lengths, axis=1)[:, :-1], 1, axis=1)
        segment = np.cumsum(boundary[:, :-1], axis=1)  # (B, n): segment index of each token
        is_noise = segment % 2 == 1
        first = np.ones_like(is_noise)
        first[:, 1:] = segment[:, 1:] != segment[:, :-1]
        span = segment // 2
        mark = self.sentinels[span] if self.cfg.corruption == "span" else np.full_like(span, self.mask_id)
        encoder = np.where(is_noise & first, mark, content)[~is_noise | first].reshape(B, -1)
        if self.cfg.corruption == "span":
            target = np.where(~is_noise & first, self.sentinels[span], content)[is_noise | first].reshape(B, -1)
        else:
            target = content
        col = np.full((B, 1), 0, np.int64)
        encoder = np.concatenate([col + self.cls_id, encoder, col + self.eos_id], axis=1)
        labels = np.concatenate([target, col + self.eos_id], axis=1)
        decoder = np.concatenate([col + self.start_id, labels[:, :-1]], axis=1)
        return {"input_ids": torch.from_numpy(encoder), "decoder_input_ids": torch.from_numpy(decoder),
                "labels": torch.from_numpy(labels)}

    def from_blocks(self, blocks, block_ids, epochs=0, rate: float | None = None) -> dict:
        return self.corrupt(blocks.gather(block_ids), block_ids, epochs)


class Seq2SeqObjective(nn.Module):
    """forward(input_ids, decoder_input_ids, labels) -> {"loss", "logits", "targets"}: mean
    cross-entropy over the decoder's positions (labels of -100 are skipped: padded scoring batches)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, decoder_input_ids, labels, attention_mask=None, decoder_attention_mask=None) -> dict:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                            decoder_attention_mask=decoder_attention_mask).logits  # (B, Tt, V)
        keep = labels != -100
        logits, targets = logits[keep], labels[keep]
        loss = F.cross_entropy(logits.float(), targets)
        return {"loss": loss, "logits": logits, "targets": targets}


@register("objective", "seq2seq")
def build_seq2seq(model, tokenizer) -> Seq2SeqObjective:
    """Decoder cross-entropy on a *ForConditionalGeneration model; batches come from SpanCorruptor."""
    return Seq2SeqObjective(model)
