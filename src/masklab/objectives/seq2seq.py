"""Sequence-to-sequence pretraining on an encoder-decoder: T5's span corruption, or BART's text infilling.

Span corruption (Raffel et al. 2020, arXiv 1910.10683): `rate` of each block's tokens are corrupted in
spans of mean length `mean_span`. As in T5's `random_spans_noise_mask`, the number of corrupted tokens
is exact and the block alternates kept and corrupted segments; the number of spans is
floor(noise / mean_span) or one more, drawn so its mean is exact, and half the blocks open with a span
(T5 always opens with kept text, so its inputs always end on a sentinel: a model trained that way has
rarely seen text after a sentinel, which is exactly what scoring a word in mid-sentence shows it).
Every batch has the same shapes (at most one padding position per row):

    encoder  [CLS] kept_0 <extra_id_0> kept_1 <extra_id_1> ... [SEP]
    decoder  <extra_id_0> span_0 <extra_id_1> span_1 ... [SEP]

Text infilling (BART, Lewis et al. 2019, arXiv 1910.13461) hides each span behind one [MASK] and the
decoder writes the whole block back. Both draw from per-(seed, block, epoch) random streams, like the
masked LM's batcher, so a batch is a pure function of its index: exact resume, any worker count.

Figures: decoder loss, perplexity and accuracy on fixed-seed corruptions (`eval.seed`), so every
evaluation of every model decodes the same spans.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from masklab.config import EvalConfig, RunConfig, Seq2SeqConfig
from masklab.data.shards import PackedBlocks
from masklab.data.tokenizer import sentinel_ids
from masklab.errors import UserError
from masklab.masking import derive_seed
from masklab.objectives.recipe import EvaluateHook, Parts, Setting, block_ranges, term, token_metrics


def span_counts(length: int, rate: float, mean_span: float) -> tuple[int, int, float]:
    """(corrupted tokens, fewest spans, chance of one span more) for `length` corruptible tokens.

    The corrupted count is exact. A block has floor(noise / mean_span) spans, or one more with the
    chance that makes the expected count noise / mean_span exactly: rounding to one fixed count would
    miss the mean by up to 1/(2 spans) (3.17 instead of 3 for 128-token blocks at 15%)."""
    noise = min(max(1, int(round(length * rate))), length - 1)
    expected = min(max(1.0, noise / mean_span), float(min(noise, length - noise)))
    fewest = int(np.floor(expected))
    return noise, fewest, expected - fewest


def _segment_lengths(uniform: np.ndarray, total: int, parts: np.ndarray, most: int) -> np.ndarray:
    """(B, most) random compositions of `total` into parts[b] positive lengths (zeros after them), from
    (B, total-1) uniforms: the parts[b] - 1 lowest-ranked of the total - 1 gaps become the cut points."""
    B = len(uniform)
    if most == 1:
        return np.full((B, 1), total, dtype=np.int64)
    ranked = np.argsort(uniform, axis=1)[:, : most - 1] + 1  # (B, most-1) candidate cuts in 1..total-1
    ranked = np.where(np.arange(most - 1)[None, :] < (parts - 1)[:, None], ranked, total)  # unused cuts sit at the end
    edges = np.concatenate(
        [np.zeros((B, 1), np.int64), np.sort(ranked, axis=1), np.full((B, 1), total, np.int64)], axis=1
    )
    return np.diff(edges, axis=1)


def _left_pack(values: np.ndarray, keep: np.ndarray, width: int, fill: int) -> np.ndarray:
    """Row-wise: the kept values moved to the front in order, then `fill`, cut to `width` columns."""
    order = np.argsort(~keep, axis=1, kind="stable")
    packed = np.take_along_axis(values, order, axis=1)[:, :width]
    count = keep.sum(1, keepdims=True)
    return np.where(np.arange(width)[None, :] < count, packed, fill)


class SpanCorruptor:
    """(B, T) packed blocks -> {"input_ids", "attention_mask", "decoder_input_ids", "labels"}.

    Shapes are the same for every batch: a block with one span fewer than the most carries one padding
    position at the end of the encoder input (masked out) and of the target (label -100)."""

    features: tuple[str, ...] = ()

    def __init__(self, cfg: Seq2SeqConfig, tokenizer, seed: int, seq_length: int):

        self.cfg, self.seed = cfg, seed
        self.content = seq_length - 1  # every token after the block's [CLS] may be corrupted
        if cfg.mean_span > self.content:
            raise UserError(
                f"seq2seq.mean_span={cfg.mean_span:g} is longer than a {seq_length}-token block; "
                "lower seq2seq.mean_span or raise data.seq_length"
            )
        self.noise, self.fewest, self.extra_chance = span_counts(self.content, cfg.rate, cfg.mean_span)
        self.spans = self.fewest + (self.extra_chance > 0)  # the most spans a block can have
        self.sentinels = np.asarray(sentinel_ids(tokenizer), dtype=np.int64)
        if cfg.corruption == "span" and len(self.sentinels) < self.spans:
            raise UserError(
                f"span corruption of {seq_length}-token blocks needs {self.spans} sentinel tokens "
                f"(<extra_id_0> ...), the tokenizer has {len(self.sentinels)}; lower data.seq_length or "
                "seq2seq.rate, raise seq2seq.mean_span, or let masklab train the tokenizer"
            )
        self.mask_id = tokenizer.mask_token_id
        self.cls_id, self.eos_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id

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

    def _draws(self, block_ids, epochs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per block, from its own (seed, block, epoch) stream: its span count, whether it opens with a
        span, and the two cut uniforms."""
        passes = np.broadcast_to(np.asarray(epochs), (len(block_ids),))
        spans, opens, kept, noise = [], [], [], []
        for b, e in zip(block_ids, passes):
            rng = np.random.default_rng(derive_seed(self.seed, int(b), int(e), 0x5EA))
            spans.append(self.fewest + int(rng.random() < self.extra_chance))
            opens.append(rng.random() < 0.5)
            kept.append(rng.random(self.content - self.noise - 1))
            noise.append(rng.random(self.noise - 1))
        B = len(block_ids)
        return np.asarray(spans), np.asarray(opens), np.stack(kept).reshape(B, -1), np.stack(noise).reshape(B, -1)

    def corrupt(self, blocks: np.ndarray, block_ids, epochs=0) -> dict:
        blocks = np.asarray(blocks, dtype=np.int64)
        B = len(blocks)
        content = blocks[:, 1:]  # (B, n)
        spans, opens, u_kept, u_noise = self._draws(block_ids, epochs)
        kept = _segment_lengths(u_kept, self.content - self.noise, spans, self.spans)
        noise = _segment_lengths(u_noise, self.noise, spans, self.spans)
        # segments alternate; half the blocks open with a span, so a sentinel is as often followed by text as
        # by the end (T5 always opens with kept text and so always ends on a span)
        pairs = np.where(opens[:, None, None], np.stack([noise, kept], axis=2), np.stack([kept, noise], axis=2))
        boundary = np.zeros((B, self.content + 1), np.int64)
        np.put_along_axis(boundary, np.cumsum(pairs.reshape(B, -1), axis=1)[:, :-1], 1, axis=1)
        segment = np.cumsum(boundary[:, :-1], axis=1)  # (B, n): segment index of each token
        is_noise = (segment % 2 == 1) ^ opens[:, None]
        opening = np.ones_like(is_noise)
        opening[:, 1:] = segment[:, 1:] != segment[:, :-1]
        opening &= is_noise  # the first token of each span
        mark = self.sentinels[segment // 2] if self.cfg.corruption == "span" else np.full_like(segment, self.mask_id)
        enc_len, dec_len = self.lengths
        eos = np.full((B, 1), self.eos_id)
        body = np.concatenate([np.where(opening, mark, content), eos], axis=1)
        keep = np.concatenate([~is_noise | opening, np.ones((B, 1), bool)], axis=1)
        encoder = np.concatenate(
            [np.full((B, 1), self.cls_id), _left_pack(body, keep, enc_len - 1, self.pad_id)], axis=1
        )
        if (
            self.cfg.corruption == "span"
        ):  # each span's sentinel, then its tokens: interleave (sentinel?, token?) per position
            body = np.concatenate([np.stack([mark, content], axis=2).reshape(B, -1), eos], axis=1)
            keep = np.concatenate([np.stack([opening, is_noise], axis=2).reshape(B, -1), np.ones((B, 1), bool)], axis=1)
            labels = _left_pack(body, keep, dec_len, -100)
        else:
            labels = np.concatenate([content, eos], axis=1)
        decoder = np.concatenate(
            [np.full((B, 1), self.pad_id), np.where(labels[:, :-1] == -100, self.pad_id, labels[:, :-1])], 1
        )
        return {
            "input_ids": torch.from_numpy(encoder),
            "attention_mask": torch.from_numpy((encoder != self.pad_id).astype(np.int64)),
            "decoder_input_ids": torch.from_numpy(decoder),
            "labels": torch.from_numpy(labels),
        }

    def from_blocks(self, blocks, block_ids, epochs=0, rate: float | None = None) -> dict:
        return self.corrupt(blocks.gather(block_ids), block_ids, epochs)


class Seq2SeqObjective(nn.Module):
    """forward(input_ids, decoder_input_ids, labels) -> {"loss", "logits", "targets"}: mean
    cross-entropy over the decoder's positions (labels of -100 are skipped: padded scoring batches)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, decoder_input_ids, labels, attention_mask=None, decoder_attention_mask=None) -> dict:
        logits = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
        ).logits  # (B, Tt, V)
        keep = labels != -100
        logits, targets = logits[keep], labels[keep]
        loss = F.cross_entropy(logits.float(), targets)
        return {"loss": loss, "logits": logits, "targets": targets}


def build_seq2seq(model, tokenizer) -> Seq2SeqObjective:
    """Decoder cross-entropy on a *ForConditionalGeneration model; batches come from SpanCorruptor."""
    return Seq2SeqObjective(model)


def seq2seq_metrics(objective, corruptor, blocks: PackedBlocks, eval_cfg: EvalConfig, precision: str = "fp32") -> dict:
    """{"span_loss", "span_perplexity", "span_accuracy", "span_tokens"} of a Seq2SeqObjective; `corruptor`
    must be seeded with eval.seed."""
    batches = (corruptor.from_blocks(blocks, ids) for ids in block_ranges(blocks, eval_cfg))
    return token_metrics(objective, batches, precision, "span_")


def heldout(model, tokenizer, blocks: PackedBlocks, cfg: RunConfig, precision: str, unigram=None) -> dict:
    corruptor = SpanCorruptor(cfg.seq2seq, tokenizer, cfg.eval.seed, cfg.data.seq_length)
    return seq2seq_metrics(build_seq2seq(model, tokenizer), corruptor, blocks, cfg.eval, precision)


def parts(s: Setting) -> Parts:
    """One span-corruption (or text-infilling) term; figures on the same fixed corruptions every time."""
    cfg, tc = s.cfg, s.cfg.train
    objective = build_seq2seq(s.model, s.tokenizer)
    corruptor = SpanCorruptor(cfg.seq2seq, s.tokenizer, tc.seed, cfg.data.seq_length)
    fixed = SpanCorruptor(cfg.seq2seq, s.tokenizer, cfg.eval.seed, cfg.data.seq_length)

    def evaluate():
        return seq2seq_metrics(objective, fixed, s.val_blocks, cfg.eval, s.precision)

    return Parts(
        [term("seq2seq", objective, 1.0, s.train_blocks, corruptor, tc.batch_size, tc.seed, s)],
        [EvaluateHook(evaluate)],
        evaluate,
    )
