import hashlib
import json
import math

import pytest
import torch

from conftest import tiny_overrides
from masklab.config import build_config
from masklab.errors import TrainingDiverged, UserError
from masklab.models import build_model
from masklab.objectives.mlm import MaskedLMObjective
from masklab.pretrain.run import pretrain
from masklab.train import cut_into_pieces, lr_factor, param_groups, piece_length


def tiny_model(tokenizer, attention="auto", architecture="bert"):
    """2 layers x 32 wide; the feed-forward width is left to the architecture's rule for ModernBERT."""
    width = ["model.intermediate_size=64"] if architecture == "bert" else []
    cfg = build_config(
        {},
        [
            "model.preset=tiny",
            "model.num_layers=2",
            "model.hidden_size=32",
            "model.num_heads=2",
            f"model.attention={attention}",
            f"model.architecture={architecture}",
            *width,
        ],
    )
    torch.manual_seed(0)
    return build_model(cfg.model, tokenizer, 32)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_sparse_prediction_loss_equals_dense(tiny_tokenizer, attention):
    model = tiny_model(tiny_tokenizer, attention).eval()
    ids = torch.randint(5, len(tiny_tokenizer), (4, 32))
    labels = torch.full_like(ids, -100)
    sel = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    labels[sel] = ids[sel]
    sparse = MaskedLMObjective(model, sparse=True)(ids, labels)
    dense = MaskedLMObjective(model, sparse=False)(ids, labels)
    hf = model(input_ids=ids, labels=labels).loss
    torch.testing.assert_close(sparse["loss"], dense["loss"])
    torch.testing.assert_close(sparse["loss"], hf)
    assert sparse["logits"].shape == (int(sel.sum()), len(tiny_tokenizer))


@pytest.mark.parametrize("architecture", ["bert", "modernbert"])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("documents", [False, True])
def test_sparse_final_layer_matches_full_encoder(tiny_tokenizer, attention, documents, architecture):
    """Loss and every gradient equal the full computation, with uneven masked counts per block
    (one block has none) and with or without block-diagonal attention."""
    model = tiny_model(tiny_tokenizer, attention, architecture)
    if architecture == "modernbert":  # a window narrower than the block, so the sliding-window mask matters
        model.config.local_attention = 8
        assert model.config.layer_types[-1] == "sliding_attention"
    sep = tiny_tokenizer.sep_token_id
    ids = torch.randint(5, len(tiny_tokenizer), (4, 32), generator=torch.Generator().manual_seed(3))
    ids[:, 10] = sep
    labels = torch.full_like(ids, -100)
    sel = torch.rand(ids.shape, generator=torch.Generator().manual_seed(4)) < 0.2
    sel[2] = False
    labels[sel] = ids[sel]
    results = []
    for sparse_last in (True, False):
        model.zero_grad()
        objective = MaskedLMObjective(model, document_sep_id=sep if documents else None, sparse_final_layer=sparse_last)
        assert objective.sparse_final_layer == sparse_last
        out = objective(ids, labels)
        out["loss"].backward()
        results.append(
            (
                out["loss"].detach(),
                out["logits"].detach(),
                {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
            )
        )
    (loss_a, logits_a, grads_a), (loss_b, logits_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(logits_a, logits_b, rtol=1e-4, atol=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6, msg=name)


def test_sparse_final_layer_for_roberta(tiny_tokenizer):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    model = RobertaForMaskedLM(
        RobertaConfig(
            vocab_size=len(tiny_tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            pad_token_id=1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    ).eval()
    ids = torch.randint(5, len(tiny_tokenizer), (3, 24), generator=torch.Generator().manual_seed(5))
    labels = torch.full_like(ids, -100)
    labels[:, 4:9] = ids[:, 4:9]
    fast = MaskedLMObjective(model)
    assert fast.sparse_final_layer
    torch.testing.assert_close(fast(ids, labels)["loss"], model(input_ids=ids, labels=labels).loss)


@pytest.mark.parametrize(
    "schedule, progress, expected",
    [
        ("linear", 0.05, 0.5),
        ("linear", 0.1, 1.0),
        ("linear", 0.55, 0.5),
        ("linear", 1.0, 0.0),
        ("cosine", 0.55, 0.5),
        ("cosine", 1.0, 0.0),
        ("constant", 0.9, 1.0),
        ("wsd", 0.5, 1.0),  # stable until the decay share
        ("wsd", 0.8, 1.0),
        ("wsd", 0.9, 0.5),  # halfway through the last 20%
        ("wsd", 1.0, 0.0),
    ],
)
def test_lr_schedule(schedule, progress, expected):
    assert lr_factor(progress, 0.1, schedule) == pytest.approx(expected, abs=1e-9)


def test_sequence_length_warmup_doubles_in_stages_and_keeps_every_token():
    lengths = [piece_length(p / 100, 128, 0.3, 32) for p in range(100)]
    assert lengths[:10] == [32] * 10 and lengths[15:30] == [64] * 15 and set(lengths[30:]) == {128}
    assert sorted(set(lengths)) == [32, 64, 128]
    tc = build_config({}, ["train.seq_warmup_fraction=0.3", "train.seq_warmup_start=32"]).train
    batch = {"input_ids": torch.arange(2 * 128).reshape(2, 128), "labels": torch.arange(2 * 128).reshape(2, 128) % 7}
    cut = cut_into_pieces(batch, 0.0, tc)
    assert cut["input_ids"].shape == (8, 32) and torch.equal(cut["input_ids"].flatten(), batch["input_ids"].flatten())
    assert torch.equal(cut["labels"].flatten(), batch["labels"].flatten())
    assert cut_into_pieces(batch, 0.5, tc) is batch
    with pytest.raises(UserError, match="seq_warmup_fraction"):  # seq2seq targets are not token-aligned
        cut_into_pieces({**batch, "decoder_labels": torch.zeros(2, 20)}, 0.0, tc)


def test_pretraining_with_wsd_and_sequence_warmup_resumes_exactly(corpus_file, tmp_path):
    extra = {"train__schedule": "wsd", "train__seq_warmup_fraction": 0.5, "train__seq_warmup_start": 16}
    run(corpus_file, tmp_path / "straight", **extra)
    run(corpus_file, tmp_path / "split", halt=4, **extra)  # killed inside the short-sequence stage
    summary = run(corpus_file, tmp_path / "split", resume=True, **extra)
    assert summary["steps"] == 12 and math.isfinite(summary["final_train_loss"])
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    lrs = [
        r["lr"]
        for r in map(json.loads, (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines())
        if "lr" in r
    ]
    assert lrs[0] == lrs[1] > lrs[-1]  # held at the peak, then decayed


def test_no_weight_decay_on_biases_and_layernorm(tiny_tokenizer):
    decay, no_decay = param_groups(tiny_model(tiny_tokenizer), 0.01)
    assert all(p.ndim >= 2 for p in decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0


def run(corpus, out, steps=12, halt=None, resume=False, **extra):
    settings = {"train__max_steps": steps, "train__save_every": 4, "train__eval_every": 0, **extra}
    cfg = build_config({}, tiny_overrides(corpus, **settings))
    return pretrain(cfg, out, resume=resume, halt_at_step=halt, show_progress=False)


def weights(run_dir):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "checkpoint" / "model.safetensors"))


def test_resume_after_kill_gives_identical_weights(corpus_file, tmp_path):
    run(corpus_file, tmp_path / "straight")
    run(corpus_file, tmp_path / "split", halt=6)  # stops at step 6 with a checkpoint, as if killed there
    state = torch.load(tmp_path / "split" / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 6
    summary = run(corpus_file, tmp_path / "split", resume=True)
    assert summary["steps"] == 12
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    # the log is continuous: one line per log step, no duplicates from the killed part
    steps = [
        r["step"]
        for r in map(json.loads, (tmp_path / "split" / "metrics.jsonl").read_text().splitlines())
        if "loss" in r
    ]
    assert steps == [5, 10, 12]


def test_checkpoint_reloads_with_identical_outputs(corpus_file, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    run(corpus_file, tmp_path / "r", steps=4)
    ckpt = tmp_path / "r" / "checkpoint"
    model = AutoModelForMaskedLM.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    again = AutoModelForMaskedLM.from_pretrained(ckpt).eval()
    ids = tok("w1 w2 [MASK] w4", return_tensors="pt")
    torch.testing.assert_close(model(**ids).logits, again(**ids).logits, rtol=0, atol=0)
    filler = pipeline("fill-mask", model=str(ckpt))
    assert len(filler("w1 w2 [MASK] w4")) == 5


def test_existing_run_is_not_overwritten(corpus_file, tmp_path):
    run(corpus_file, tmp_path / "r", steps=4)
    before = hashlib.sha256((tmp_path / "r" / "checkpoint" / "model.safetensors").read_bytes()).hexdigest()
    with pytest.raises(UserError, match="--resume"):
        run(corpus_file, tmp_path / "r", steps=4)
    assert hashlib.sha256((tmp_path / "r" / "checkpoint" / "model.safetensors").read_bytes()).hexdigest() == before


def test_divergence_stops_and_keeps_last_good_checkpoint(corpus_file, tmp_path):
    run(corpus_file, tmp_path / "r", steps=4)
    path = tmp_path / "r" / "checkpoint" / "model.safetensors"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    # continue with an absurd learning rate and no clipping: the weights overflow, the loss turns NaN
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        run(
            corpus_file,
            tmp_path / "r",
            steps=40,
            resume=True,
            train__lr=1e30,
            train__clip_norm=0,
            train__warmup_fraction=0,
            train__schedule="constant",
            train__save_every=1000,
        )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_disk_full_checkpoint_write_keeps_previous(corpus_file, tmp_path, monkeypatch):
    import errno

    from masklab.models import checkpoint as ck

    run(corpus_file, tmp_path / "r", steps=4)
    before = hashlib.sha256((tmp_path / "r" / "checkpoint" / "model.safetensors").read_bytes()).hexdigest()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full)  # the disk fills while the trainer state is written
    with pytest.raises(UserError, match="disk is full.*previous checkpoint is kept"):
        run(corpus_file, tmp_path / "r", steps=8, resume=True)
    assert hashlib.sha256((tmp_path / "r" / "checkpoint" / "model.safetensors").read_bytes()).hexdigest() == before
    assert not list((tmp_path / "r").glob(".checkpoint-*"))


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("architecture", ["bert", "modernbert"])
def test_block_diagonal_attention_keeps_packed_documents_apart(tiny_tokenizer, attention, architecture):
    model = tiny_model(tiny_tokenizer, attention, architecture).eval()
    assert model.config._attn_implementation == attention
    sep = tiny_tokenizer.sep_token_id
    ids = torch.randint(5, len(tiny_tokenizer), (2, 32), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, 12] = tiny_tokenizer.cls_token_id, sep  # document A = positions 0..12, B = 13..31
    other = ids.clone()
    other[:, 20:30] = torch.randint(5, len(tiny_tokenizer), (2, 10), generator=torch.Generator().manual_seed(2))
    labels = torch.full_like(ids, -100)
    labels[:, 3:9] = ids[:, 3:9]  # predict inside document A only
    apart = MaskedLMObjective(model, document_sep_id=sep)
    together = MaskedLMObjective(model)
    torch.testing.assert_close(apart(ids, labels)["logits"], apart(other, labels)["logits"])
    assert not torch.allclose(together(ids, labels)["logits"], together(other, labels)["logits"])


def test_pretraining_with_block_diagonal_attention(corpus_file, tmp_path):
    summary = run(corpus_file, tmp_path / "bd", steps=4, data__block_diagonal="true")
    assert summary["steps"] == 4 and summary["masked_loss"] > 0


@pytest.mark.parametrize(
    "bf16, fp32, expected",
    [
        (1000.0, 250.0, "bf16"),  # AMX / Zen 4 class: bf16 matmuls several times fp32
        (150.0, 250.0, "fp32"),  # AVX512-BF16 without AMX on some CPUs: bf16 slower than fp32
        (280.0, 250.0, "fp32"),  # a few percent faster does not pay for autocast's casts
    ],
)
def test_auto_precision_follows_the_measured_matmul_rates(monkeypatch, tmp_path, bf16, fp32, expected):
    import masklab.runtime as runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(
        runtime, "_rate", lambda dtype, m, k, n: bf16 if dtype == torch.bfloat16 else fp32
    )  # a given machine
    choice, info = runtime.choose_precision("auto", 64, 256, 1024, cache_root=tmp_path)
    assert choice == expected and info["bf16_gflops"] == bf16 and info["fp32_gflops"] == fp32
    assert runtime.choose_precision("fp32", cache_root=tmp_path)[0] == "fp32"


def test_matmul_measurement_is_real_quick_and_cached(tmp_path):
    import time

    from masklab.runtime import measure_matmul

    state = torch.get_rng_state()
    start = time.perf_counter()
    rates = measure_matmul(512, 64, 256, tmp_path)
    assert time.perf_counter() - start < 1.5  # the budget is 1 s; slack for a loaded CI machine
    assert rates["fp32_gflops"] > 0.1 and rates["bf16_gflops"] > 0.01
    assert torch.equal(torch.get_rng_state(), state)  # measuring does not shift the run's random stream
    cached = list((tmp_path / "machine").glob("matmul-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["512x64x256"] == rates
    again = time.perf_counter()
    assert measure_matmul(512, 64, 256, tmp_path) == rates and time.perf_counter() - again < 0.05


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_modernbert_sparse_loss_equals_its_own_dense_loss(tiny_tokenizer, attention):
    model = tiny_model(tiny_tokenizer, attention, "modernbert").eval()
    assert model.config.model_type == "modernbert" and model.config.intermediate_size == 64  # GeGLU: half of 4 x 32
    ids = torch.randint(5, len(tiny_tokenizer), (3, 32), generator=torch.Generator().manual_seed(6))
    labels = torch.full_like(ids, -100)
    labels[:, 5:11] = ids[:, 5:11]
    out = MaskedLMObjective(model)(ids, labels)
    torch.testing.assert_close(out["loss"], model(input_ids=ids, labels=labels).loss)
    assert out["logits"].shape == (18, len(tiny_tokenizer))


def test_modernbert_pretrains_and_loads_in_the_fill_mask_pipeline(corpus_file, tmp_path):
    from transformers import pipeline

    summary = run(corpus_file, tmp_path / "mb", steps=4, model__architecture="modernbert")
    assert summary["steps"] == 4 and math.isfinite(summary["masked_loss"])
    fill = pipeline("fill-mask", model=str(tmp_path / "mb" / "checkpoint"))
    predictions = fill(f"the quick {fill.tokenizer.mask_token} fox")
    assert len(predictions) == 5 and all(p["token_str"] for p in predictions)
    continued = run(corpus_file, tmp_path / "mb2", steps=2, model__init=str(tmp_path / "mb"))
    assert continued["steps"] == 2
