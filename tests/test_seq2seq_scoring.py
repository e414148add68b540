"""A seq2seq model's sentence scores: the per-word sentinel score reads word order only through the
encoder, so it ties a sentence and its reversal when the encoder is blind to order (as after a few
hundred steps of span corruption: docs/seq2seq-diagnosis.md); the decoder score reads the decoder's own
left-to-right knowledge, in one pass per sentence."""

import numpy as np
import pytest
import torch

from masklab.data.tokenizer import sentinel_ids
from masklab.errors import UserError
from masklab.evaluate.scoring import SentenceScorer

TEXTS = ["w3 w8 w5 w1.", "w7 w30 w7 w30 w7.", "w5 w9"]
SENTENCE, REVERSED = "w3 w8 w5 w1 w12.", "w12 w1 w5 w8 w3."


def logp(logits, token):
    return float(torch.log_softmax(logits.detach().float(), -1)[token])


def test_decoder_score_is_the_decoders_likelihood_of_the_whole_sentence(tiny_tokenizer, tiny_model):
    model = tiny_model(tiny_tokenizer, "seq2seq")
    tok = tiny_tokenizer
    s0 = sentinel_ids(tok)[0]
    scores = SentenceScorer(model, tok).scores("decoder", TEXTS)
    for text, score in zip(TEXTS, scores):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        encoder = torch.tensor([[tok.cls_token_id, s0, tok.sep_token_id]])  # the whole sentence is the one span
        decoder = torch.tensor([[tok.pad_token_id, s0, *ids[:-1]]])
        logits = model(input_ids=encoder, decoder_input_ids=decoder).logits[0]
        assert score == pytest.approx(sum(logp(logits[1 + k], t) for k, t in enumerate(ids)), abs=1e-4)
    alone = [SentenceScorer(model, tok, tokens_per_batch=8).scores("decoder", [t])[0] for t in TEXTS]
    np.testing.assert_allclose(scores, alone, atol=1e-4)


def test_an_order_blind_encoder_ties_the_sentinel_score_but_not_the_decoder_score(tiny_tokenizer, tiny_model):
    model = tiny_model(tiny_tokenizer, "seq2seq")
    scorer = SentenceScorer(model, tiny_tokenizer)
    pair = [SENTENCE, REVERSED]
    # an encoder that reads context: reversal changes each word's context, so the sentinel sums differ
    assert abs(np.subtract(*scorer.scores("sentinel", pair))) > 1e-3
    with torch.no_grad():  # the decoder now ignores the encoder (cross-attention adds nothing to the residual)
        for block in model.decoder.block:
            block.layer[1].EncDecAttention.o.weight.zero_()
    # each one-token word is decoded after the sentinel alone: the same log-probabilities in another order
    good, bad = scorer.scores("sentinel", pair)
    assert good == pytest.approx(bad, abs=1e-4)
    good, bad = scorer.scores("decoder", pair)
    assert abs(good - bad) > 1e-3  # the decoder's left-to-right order still tells the two apart


def test_decoder_cloze_scores_the_whole_sentence_and_only_seq2seq_gives_it(tiny_tokenizer, tiny_model):
    model = tiny_model(tiny_tokenizer, "seq2seq")
    scorer = SentenceScorer(model, tiny_tokenizer)
    slots = scorer.slot_scores("decoder", "w3 w8", ["w5", "w9"], "w1.")
    np.testing.assert_allclose(slots, scorer.scores("decoder", ["w3 w8 w5 w1.", "w3 w8 w9 w1."]), atol=1e-5)
    with pytest.raises(UserError, match="cannot give decoder scores"):
        SentenceScorer(tiny_model(tiny_tokenizer, "mlm"), tiny_tokenizer).scores("decoder", TEXTS)
