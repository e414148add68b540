"""Sentence scores for every objective: log-probabilities of a sentence's tokens, batched.

    causal      log p(t_i | [CLS] t_<i): a decoder's log-likelihood (clm, hybrid)
    pll         pseudo-log-likelihood (Salazar et al. 2020, arXiv 1910.14659): each token masked in
                turn, scored given everything else (mlm; hybrid through masked next-token prediction)
    pll_word    PLL-word-l2r (Kauf & Ivanova 2023, arXiv 2305.10588): when scoring a token, the tokens
                of the same word to its right are masked too, so a multi-token word cannot be guessed
                from its own pieces (PLL's bias towards long, rare words)
    sentinel    the encoder-decoder analogue: each word in turn replaced by one <extra_id_0> in the
                encoder input, its tokens scored by the decoder after the sentinel (seq2seq). A word's
                first token is read off the encoder's context alone, so a model whose encoder is still
                blind to word order scores every ordering of the same words alike
    decoder     the encoder-decoder's left-to-right score: the whole sentence written by the decoder as
                the one span behind a lone <extra_id_0> (the encoder sees nothing else), in one pass;
                what the decoder learned about word order shows here first (docs/seq2seq-diagnosis.md)
    rtd         an ELECTRA discriminator's log P(original) of each token of the sentence as written, in
                one pass (electra; its pll scores come from its generator)

Every score is a sum of log-probabilities (nats) over the sentence's tokens, so higher is better. The
sums rank sentences for one model (minimal pairs, cloze); the perplexities made from them are each on
their own scale and are never comparable across objectives.

One engine serves them all: a score is a list of *queries* (input ids, optional decoder ids, and
(position, token) targets); queries are sorted by length, padded into batches of about
`tokens_per_batch` tokens, and the output head runs only at the target positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from masklab.data.tokenizer import sentinel_ids
from masklab.errors import UserError
from masklab.objective_records import FAMILY_SCORES
from masklab.objectives.clm import attention_mask_4d
from masklab.objectives.mlm import MLM_PARTS
from masklab.runtime import autocast_context, device_of


@dataclass
class Query:
    sentence: int  # index of the sentence (or candidate) the log-probabilities add up to
    input_ids: list[int]
    targets: list[tuple[int, int]]  # (position, token): the position whose prediction is scored
    decoder_ids: list[int] | None = None  # encoder-decoder only; targets then index the decoder


def objective_of(model) -> str:
    """The objective a loaded model was pretrained with, from its transformers class."""
    if model.config.is_encoder_decoder:
        return "seq2seq"
    if hasattr(model, "discriminator"):  # models.electra.ElectraPair
        return "electra"
    name = type(model).__name__
    return "clm" if name.endswith("ForCausalLM") or name.endswith("LMHeadModel") else "mlm"


class SentenceScorer:
    """Scores text with one model. `kind` is one of the scores above that the model can give."""

    def __init__(self, model, tokenizer, precision: str = "fp32", tokens_per_batch: int = 4096):
        self.model, self.tokenizer, self.precision = model.eval(), tokenizer, precision
        self.tokens_per_batch = tokens_per_batch
        self.objective = objective_of(model)
        self.cls, self.sep, self.pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
        self.mask = tokenizer.mask_token_id
        self.eager = model.config._attn_implementation == "eager"

    # ---- tokens ----------------------------------------------------------------------------------------
    def words(self, text: str) -> list[list[int]]:
        """The text's token ids grouped by word."""
        enc = self.tokenizer(text, add_special_tokens=False)
        groups: list[list[int]] = []
        last = object()
        for token, word in zip(enc["input_ids"], enc.word_ids()):
            if word != last or word is None:
                groups.append([])
                last = word
            groups[-1].append(token)
        return groups

    # ---- queries per score -------------------------------------------------------------------------------
    def _causal(self, i: int, ids: list[int]) -> list[Query]:
        full = [self.cls, *ids]
        return [Query(i, full, [(p, full[p]) for p in range(1, len(full))])]

    def _pll(self, i: int, words: list[list[int]], per_word: bool) -> list[Query]:
        ids = [t for w in words for t in w]
        full = [self.cls, *ids, self.sep]
        word_of = [w for w, group in enumerate(words) for _ in group]
        queries = []
        for k in range(len(ids)):
            masked = list(full)
            for j in range(k, len(ids)):
                if j == k or (per_word and word_of[j] == word_of[k]):
                    masked[1 + j] = self.mask
                elif j > k:
                    break
            queries.append(Query(i, masked, [(1 + k, ids[k])]))
        return queries

    def _sentinel(self, i: int, words: list[list[int]], slot: int | None = None, fills=None) -> list[Query]:
        """One query per word (or, for a cloze slot, per candidate filling word `slot`)."""
        sentinel = self._sentinels()[0]
        chosen = range(len(words)) if slot is None else [slot]
        queries = []
        for w in chosen:
            for j, fill in enumerate(fills if fills is not None else [words[w]]):
                encoder = [self.cls, *[t for v, g in enumerate(words) if v != w for t in g], self.sep]
                encoder.insert(1 + sum(len(g) for g in words[:w]), sentinel)
                decoder = [self.pad, sentinel, *fill[:-1]]
                queries.append(
                    Query(i if fills is None else j, encoder, [(p + 1, t) for p, t in enumerate(fill)], decoder)
                )
        return queries

    def _decoder(self, i: int, ids: list[int]) -> list[Query]:
        sentinel = self._sentinels()[0]
        decoder = [self.pad, sentinel, *ids[:-1]]  # as in training: the start token, then the span's sentinel
        return [Query(i, [self.cls, sentinel, self.sep], [(p + 1, t) for p, t in enumerate(ids)], decoder)]

    def _rtd(self, i: int, ids: list[int]) -> list[Query]:
        full = [self.cls, *ids, self.sep]
        return [Query(i, full, [(p, 0) for p in range(1, len(full) - 1)])]  # "token" 0: original (see _hidden)

    def _sentinels(self) -> list[int]:
        ids = sentinel_ids(self.tokenizer)
        if not ids:
            raise UserError(
                "the tokenizer has no <extra_id_0> sentinel; sentinel scoring needs a masklab seq2seq checkpoint"
            )
        return ids

    def queries(self, kind: str, texts: list[str]) -> list[Query]:
        if kind in ("pll", "pll_word") and self.mask is None:
            raise UserError("the tokenizer has no mask token; pseudo-log-likelihood needs one")
        out = []
        for i, text in enumerate(texts):
            words = self.words(text)
            if kind == "causal":
                out += self._causal(i, [t for w in words for t in w])
            elif kind in ("pll", "pll_word"):
                out += self._pll(i, words, kind == "pll_word")
            elif kind == "sentinel":
                out += self._sentinel(i, words)
            elif kind == "decoder":
                out += self._decoder(i, [t for w in words for t in w])
            elif kind == "rtd":
                out += self._rtd(i, [t for w in words for t in w])
            else:
                raise ValueError(f"unknown score {kind!r}")
        return out

    # ---- public ------------------------------------------------------------------------------------------
    def check(self, kind: str) -> None:
        allowed = FAMILY_SCORES[self.objective]
        if kind not in allowed:
            raise UserError(f"a {self.objective} model cannot give {kind} scores; it gives {', '.join(allowed)}")

    def scores(self, kind: str, texts: list[str]) -> np.ndarray:
        """(len(texts),) summed log-probabilities; also `counts` of scored tokens via `token_counts`."""
        self.check(kind)
        return self.run(kind, self.queries(kind, texts), len(texts))

    def token_counts(self, texts: list[str]) -> np.ndarray:
        return np.array([sum(len(w) for w in self.words(t)) for t in texts])

    def slot_scores(self, kind: str, left: str, candidates: list[str], right: str) -> np.ndarray:
        """Log-probability of each candidate word in the gap between `left` and `right`: the word's own
        tokens for pll/pll_word/sentinel (native fill-in), the whole sentence for causal and decoder."""
        self.check(kind)
        if kind in ("causal", "decoder"):
            return self.scores(kind, [f"{left} {c} {right}".strip() for c in candidates])
        left_words, right_words = self.words(left), self.words(right)
        fills = [[t for w in self.words(c) for t in w] for c in candidates]
        if kind == "sentinel":
            return self.run(
                kind, self._sentinel(0, [*left_words, [], *right_words], len(left_words), fills), len(candidates)
            )
        queries = []
        before, after = [t for w in left_words for t in w], [t for w in right_words for t in w]
        for j, fill in enumerate(fills):
            for k in range(len(fill)):  # left to right through the candidate: its later tokens stay masked
                ids = [self.cls, *before, *fill[:k], *[self.mask] * (len(fill) - k), *after, self.sep]
                queries.append(Query(j, ids, [(1 + len(before) + k, fill[k])]))
        return self.run(kind, queries, len(candidates))

    # ---- the engine --------------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, kind: str, queries: list[Query], n: int) -> np.ndarray:
        totals = np.zeros(n)
        order = sorted(range(len(queries)), key=lambda q: len(queries[q].input_ids) + len(queries[q].decoder_ids or ()))
        batch: list[Query] = []
        width = 0
        for q in order:
            query = queries[q]
            length = max(len(query.input_ids), len(query.decoder_ids or ()))
            if batch and max(width, length) * (len(batch) + 1) > self.tokens_per_batch:
                self._score_batch(kind, batch, totals)
                batch, width = [], 0
            batch.append(query)
            width = max(width, length)
        if batch:
            self._score_batch(kind, batch, totals)
        return totals

    def _pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        return ids, mask

    def _score_batch(self, kind: str, batch: list[Query], totals: np.ndarray) -> None:
        device = device_of(self.model)
        ids, mask = (t.to(device) for t in self._pad([q.input_ids for q in batch]))
        rows = torch.tensor([b for b, q in enumerate(batch) for _ in q.targets], device=device)
        positions = torch.tensor([p for q in batch for p, _ in q.targets], device=device)
        tokens = torch.tensor([t for q in batch for _, t in q.targets], device=device)
        with autocast_context(self.precision, device.type):
            hidden_at, head = self._hidden(kind, ids, mask, batch, device)
            logits = head(hidden_at(rows, positions))
        logp = torch.log_softmax(logits.float(), dim=-1).gather(1, tokens[:, None]).squeeze(1).cpu().numpy()
        np.add.at(totals, [batch[int(r)].sentence for r in rows.cpu()], logp)

    def _hidden(self, kind: str, ids, mask, batch, device):
        """(function (rows, positions) -> hidden states that predict those targets, output head)."""
        model = self.model
        if self.objective == "seq2seq":
            dec, dec_mask = (t.to(device) for t in self._pad([q.decoder_ids for q in batch]))
            out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask)
            return (lambda r, p: out.logits[r, p]), (lambda x: x)
        if self.objective == "electra" and kind == "rtd":
            hidden = model.discriminator_hidden(ids, mask)

            def two_classes(x):  # (N, 2) logits of (original, replaced): log-softmax of class 0 is log P(original)
                replaced = model.discriminator_head(x)
                return torch.stack([torch.zeros_like(replaced), replaced], dim=-1)

            return (lambda r, p: hidden[r, p]), two_classes
        if self.objective == "electra":  # masked scores: the generator
            hidden = model.generator_hidden(ids, mask)
            return (lambda r, p: hidden[r, p]), model.generator_head
        if self.objective == "mlm":
            parts = MLM_PARTS.get(model.config.model_type)
            if parts is None:
                logits = model(input_ids=ids, attention_mask=mask).logits
                return (lambda r, p: logits[r, p]), (lambda x: x)
            hidden = getattr(model, parts[0])(input_ids=ids, attention_mask=mask).last_hidden_state

            def head(x):
                for name in parts[1]:
                    x = getattr(model, name)(x)
                return x

            return (lambda r, p: hidden[r, p]), head
        # a decoder: causal attention for causal scores, bidirectional for masked next-token scores
        attention = attention_mask_4d(ids, kind == "causal", self.eager, None, mask)
        hidden = model.base_model(input_ids=ids, attention_mask=attention).last_hidden_state
        return (lambda r, p: hidden[r, p - 1]), model.get_output_embeddings()
