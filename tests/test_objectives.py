"""The causal, sequence-to-sequence and hybrid objectives: losses against reference computations, span
statistics, parameter matching, exact resume, and checkpoints that transformers pipelines load."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_overrides
from masklab.config import Seq2SeqConfig, build_config
from masklab.errors import UserError
from masklab.objectives.clm import CausalLMObjective, MaskedNextTokenObjective
from masklab.objectives.seq2seq import Seq2SeqObjective, SpanCorruptor
from masklab.pretrain.run import pretrain


def blocks(tokenizer, n=4, T=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (n, T), generator=g)
    ids[:, 0] = tokenizer.cls_token_id
    ids[:, 12] = tokenizer.sep_token_id  # a document boundary inside each block
    return ids


@pytest.mark.parametrize("architecture,attention", [("llama", "eager"), ("llama", "sdpa"), ("gpt2", "eager")])
def test_causal_loss_equals_transformers_shifted_loss(tiny_tokenizer, architecture, attention, tiny_model):
    model = tiny_model(tiny_tokenizer, "clm", architecture, attention)
    ids = blocks(tiny_tokenizer)
    ours = CausalLMObjective(model)(ids)
    reference = model(input_ids=ids, labels=ids).loss  # transformers shifts the labels itself
    torch.testing.assert_close(ours["loss"], reference)
    assert ours["logits"].shape == (4 * 31, len(tiny_tokenizer))


def test_causal_block_diagonal_keeps_documents_apart(tiny_tokenizer, tiny_model):
    model = tiny_model(tiny_tokenizer, "clm")
    ids = blocks(tiny_tokenizer)
    changed = ids.clone()
    changed[:, 3] = 7  # a token of the first document
    objective = CausalLMObjective(model, document_sep_id=tiny_tokenizer.sep_token_id)
    a, b = objective(ids)["logits"].reshape(4, 31, -1), objective(changed)["logits"].reshape(4, 31, -1)
    torch.testing.assert_close(a[:, 13:], b[:, 13:])  # the second document (after the [SEP] at 12) never sees the first
    assert not torch.allclose(a[:, 3:12], b[:, 3:12])
    plain = CausalLMObjective(model)
    assert not torch.allclose(
        plain(ids)["logits"].reshape(4, 31, -1)[:, 13:], plain(changed)["logits"].reshape(4, 31, -1)[:, 13:]
    )


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_masked_next_token_loss_is_bidirectional_and_shifted(tiny_tokenizer, attention, tiny_model):
    model = tiny_model(tiny_tokenizer, "hybrid", attention=attention)
    ids = blocks(tiny_tokenizer)
    labels = torch.full_like(ids, -100)
    labels[:, [5, 9, 20]] = ids[:, [5, 9, 20]]
    inputs = ids.clone()
    inputs[:, [5, 9, 20]] = tiny_tokenizer.mask_token_id
    ours = MaskedNextTokenObjective(model)(inputs, labels)
    # reference: full bidirectional logits, position i predicts token i+1
    visible = torch.zeros(4, 1, 32, 32) if attention == "eager" else torch.ones(4, 1, 32, 32, dtype=torch.bool)
    logits = model(input_ids=inputs, attention_mask=visible).logits
    reference = F.cross_entropy(logits[:, [4, 8, 19]].reshape(-1, logits.shape[-1]), ids[:, [5, 9, 20]].reshape(-1))
    torch.testing.assert_close(ours["loss"], reference, rtol=1e-4, atol=1e-5)
    # bidirectional: a token after the predicting position changes its prediction
    later = inputs.clone()
    later[:, 25] = 9
    assert not torch.allclose(ours["logits"], MaskedNextTokenObjective(model)(later, labels)["logits"])


def test_seq2seq_loss_equals_transformers_loss(tiny_tokenizer, tiny_model):
    model = tiny_model(tiny_tokenizer, "seq2seq")
    batch = SpanCorruptor(Seq2SeqConfig(), tiny_tokenizer, seed=0, seq_length=32).corrupt(
        blocks(tiny_tokenizer).numpy(), np.arange(4)
    )
    ours = Seq2SeqObjective(model)(**batch)
    reference = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
    ).loss  # shifts labels itself
    torch.testing.assert_close(ours["loss"], reference)


def _reconstruct(encoder, target, sentinels):
    """The original block content from a span-corrupted pair: each sentinel in the encoder input takes
    the tokens that follow the same sentinel in the target."""
    spans, current = {}, None
    for t in target[:-1]:
        if t in sentinels:
            current = t
            spans[current] = []
        else:
            spans[current].append(t)
    out = []
    for t in encoder[1:-1]:
        out += spans[t] if t in sentinels else [t]
    return out


@pytest.mark.parametrize("seq_length,rate,mean_span", [(128, 0.15, 3.0), (512, 0.15, 3.0), (128, 0.3, 8.0)])
def test_span_corruption_rates_spans_and_round_trip(tiny_tokenizer, seq_length, rate, mean_span):
    from masklab.data.tokenizer import sentinel_ids

    corruptor = SpanCorruptor(
        Seq2SeqConfig(rate=rate, mean_span=mean_span), tiny_tokenizer, seed=3, seq_length=seq_length
    )
    rng = np.random.default_rng(0)
    data = np.concatenate(
        [np.full((200, 1), tiny_tokenizer.cls_token_id), rng.integers(5, 60, (200, seq_length - 1))], 1
    )
    batch = corruptor.corrupt(data, np.arange(200))
    sentinels = set(sentinel_ids(tiny_tokenizer))
    enc, lab = batch["input_ids"].numpy(), batch["labels"].numpy()
    assert (enc.shape[1], lab.shape[1]) == corruptor.lengths  # static shapes
    noise = (~np.isin(lab, list(sentinels)) & (lab != tiny_tokenizer.sep_token_id) & (lab != -100)).sum(1)
    spans = np.isin(lab, list(sentinels)).sum(1)
    assert abs(noise.mean() / (seq_length - 1) - rate) < 0.05 * rate
    assert abs(noise.sum() / spans.sum() - mean_span) < 0.05 * mean_span
    pad = tiny_tokenizer.pad_token_id
    for row in range(50):
        encoder, target = [t for t in enc[row] if t != pad], [t for t in lab[row] if t != -100]
        assert _reconstruct(encoder, target, sentinels) == data[row, 1:].tolist()
        assert target[-1] == encoder[-1] == tiny_tokenizer.sep_token_id
    real = batch["labels"][:, :-1] != -100
    assert (batch["decoder_input_ids"][:, 1:][real] == batch["labels"][:, :-1][real]).all()
    assert (batch["attention_mask"].sum(1) == torch.as_tensor([len([t for t in r if t != pad]) for r in enc])).all()
    # span lengths vary (random segmentation), and the same seed gives the same corruption
    again = corruptor.corrupt(data, np.arange(200))
    assert torch.equal(again["input_ids"], batch["input_ids"])
    other_epoch = corruptor.corrupt(data, np.arange(200), epochs=1)
    assert not torch.equal(other_epoch["input_ids"], batch["input_ids"])


def test_text_infilling_decodes_the_whole_block(tiny_tokenizer):
    corruptor = SpanCorruptor(Seq2SeqConfig(corruption="infill"), tiny_tokenizer, seed=0, seq_length=64)
    data = np.concatenate(
        [np.full((8, 1), tiny_tokenizer.cls_token_id), np.random.default_rng(0).integers(5, 60, (8, 63))], 1
    )
    batch = corruptor.corrupt(data, np.arange(8))
    assert (batch["labels"][:, :-1].numpy() == data[:, 1:]).all()
    masks = (batch["input_ids"] == tiny_tokenizer.mask_token_id).sum(1)
    assert (masks == corruptor.spans).all()


def test_models_are_parameter_matched_at_every_preset():
    from masklab.models.build import parameter_table
    from masklab.models.presets import PRESETS

    rows = parameter_table(list(PRESETS), ["mlm", "clm", "seq2seq", "hybrid"])
    reference = {r["preset"]: r for r in rows if r["architecture"] == "modernbert"}
    for r in rows:
        if r["architecture"] == "bert":
            continue  # the classic post-LN encoder keeps BERT's own shapes
        assert abs(r["vs_reference"]) < 0.05, r
        assert abs(r["total"] / reference[r["preset"]]["total"] - 1) < 0.05, r


def run(corpus, out, objective, steps=10, halt=None, resume=False, **extra):
    settings = {
        "train__max_steps": steps,
        "train__save_every": 4,
        "train__eval_every": 5,
        "train__objective": objective,
        **extra,
    }
    return pretrain(
        build_config({}, tiny_overrides(corpus, **settings)), out, resume=resume, halt_at_step=halt, show_progress=False
    )


@pytest.mark.parametrize("objective", ["clm", "seq2seq", "hybrid"])
def test_resume_is_exact_for_each_objective(corpus_file, tmp_path, objective):
    from safetensors.torch import load_file

    straight = run(corpus_file, tmp_path / "straight", objective)
    run(corpus_file, tmp_path / "split", objective, halt=4)
    resumed = run(corpus_file, tmp_path / "split", objective, resume=True)
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoint" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    assert resumed["final_train_loss"] == straight["final_train_loss"]
    assert straight["objective"] == objective
    if objective == "hybrid":  # both halves logged, and both scored
        lines = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
        assert any("loss_clm" in line and "loss_mntp" in line for line in lines)
        assert {"perplexity", "masked_accuracy"} <= set(straight)


def test_objectives_learn_the_corpus_and_load_in_pipelines(corpus_file, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    done = {
        o: run(corpus_file, tmp_path / o, o, steps=300, train__eval_every=0, train__save_every=0)
        for o in ("clm", "seq2seq", "hybrid")
    }
    # the repeated-phrase corpus: each next token is predictable, a unigram model would be at ~1/60
    # (measured at these settings: clm 0.83; hybrid 0.72 next-token, 0.78 masked; seq2seq 0.42 on spans)
    assert done["clm"]["next_token_accuracy"] > 0.5
    assert done["hybrid"]["next_token_accuracy"] > 0.5 and done["hybrid"]["masked_accuracy"] > 0.5
    assert done["seq2seq"]["span_accuracy"] > 0.25
    for objective in ("clm", "hybrid"):
        ckpt = str(tmp_path / objective / "checkpoint")
        generator = pipeline("text-generation", model=ckpt)
        text = generator("w1 w2 w1 w2 w1", max_new_tokens=6, do_sample=False)[0]["generated_text"]
        assert text.startswith("w1 w2 w1 w2 w1") and len(text.split()) > 5
    from masklab.report.compare import compare_runs

    table = compare_runs([tmp_path / o for o in ("clm", "seq2seq", "hybrid")], tmp_path / "report")
    assert [line.split(" | ")[0].strip("| ") for line in table.splitlines()[2:]] == [
        "clm (llama, tiny)",
        "seq2seq (t5, tiny)",
        "hybrid (llama, tiny)",
    ]
    page = (tmp_path / "report" / "compare.html").read_text()
    assert "data:image/png;base64," in page and "not comparable" in page  # self-contained, says what compares
    ckpt = tmp_path / "seq2seq" / "checkpoint"
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(ckpt), AutoTokenizer.from_pretrained(ckpt)
    ids = tok("w1 w2 w1 w2 <extra_id_0> w2 w1 w2", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > 1


def test_compare_warns_when_masked_figures_come_from_different_rates_until_rescored_alike(corpus_file, tmp_path):
    from masklab.evaluate.run import evaluate_checkpoint
    from masklab.report.compare import compare_runs

    for rate in (0.15, 0.4):
        run(corpus_file, tmp_path / f"r{rate}", "mlm", steps=6, masking__rate=rate)
    runs = [tmp_path / "r0.15", tmp_path / "r0.4"]
    compare_runs(runs, tmp_path / "cmp")
    warning = "measured at different masking rates"
    page = (tmp_path / "cmp" / "compare.md").read_text()
    assert warning in page and "0.15" in page and "0.4" in page
    for path in runs:  # both rescored on common 15% masks: the figures compare now
        figures = evaluate_checkpoint(path, overrides=["masking.rate=0.15"], show_progress=False)
        assert figures["masked_at_rate"] == 0.15
    compare_runs(runs, tmp_path / "cmp")
    assert warning not in (tmp_path / "cmp" / "compare.md").read_text()


def test_objective_bad_input(corpus_file, tmp_path, tiny_tokenizer):
    with pytest.raises(
        UserError, match="unknown train.objective .diffusion.; choose one of: mlm, clm, seq2seq, hybrid"
    ):
        build_config({}, ["train.objective=diffusion"])
    with pytest.raises(UserError, match="masking settings do nothing with train.objective=clm"):
        build_config({}, ["train.objective=clm", "masking.strategy=span"])
    with pytest.raises(UserError, match="seq2seq.mean_span=40 is longer"):
        build_config({}, ["train.objective=seq2seq", "seq2seq.mean_span=40"])
    with pytest.raises(UserError, match="model.architecture=bert cannot train train.objective=clm"):
        build_config({}, ["train.objective=clm", "model.architecture=bert"])
    from masklab.data.tokenizer import check_tokenizer

    class NoSentinels:
        mask_token_id, cls_token_id, sep_token_id, bos_token_id, eos_token_id = 4, 2, 3, None, None

        def get_vocab(self):
            return {}

    with pytest.raises(UserError, match="no sentinel tokens"):
        check_tokenizer(NoSentinels(), "seq2seq")
