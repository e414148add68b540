"""Continual learning: EWC and its Fisher, the forgetting metrics, peft heads, general-text drift, resume, errors."""

import json
import random
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

import masklab.continual.run as continual_run
from conftest import WORDS, cyclic_corpus
from masklab.continual.config import build_continual_config
from masklab.continual.memory import reservoir
from masklab.continual.methods import build_cure
from masklab.continual.metrics import aggregate_seeds, sequence_metrics
from masklab.continual.run import Sequence, load_tasks, peft_config, run_continual
from masklab.continual.run import _finished as held_out_task
from masklab.data.labelled import collate
from masklab.errors import UserError
from masklab.regularizers.ewc import EWC
from masklab.regularizers.fisher import FinishedTask, fisher_diagonal
from masklab.regularizers.recadam import RecAdam


def _task_file(path, pools, labels, n=240, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = i % len(labels)
        rows.append({"text": " ".join(rng.choices(pools[k], k=rng.randrange(5, 10))), "label": labels[k]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    a = _task_file(root / "a.jsonl", [WORDS[:20], WORDS[40:]], ["low", "high"])
    b = _task_file(root / "b.jsonl", [WORDS[20:30], WORDS[30:40]], ["left", "right"], seed=1)
    general = root / "general.txt"
    general.write_text("\n".join(d[:120] for d in cyclic_corpus(80, seed=3)) + "\n", encoding="utf-8")
    return str(a), str(b), str(general)


def settings(two_tasks, checkpoint, **kw):
    a, b, general = two_tasks
    values = {
        "tasks": f"{a},{b}",
        "init": str(checkpoint),
        "max_steps": 12,
        "batch_size": 8,
        "lr": 3e-3,
        "precision": "fp32",
        "dropout": 0.0,
        "max_length": 24,
        "max_test_examples": 48,
        "probe_examples": 96,
        "fisher_examples": 16,
        "general_corpus": general,
        "general_blocks": 16,
        "pll_sentences": 2,
        "reference": False,
        "replay_min": 8,
        **kw,
    }
    return build_continual_config(values)


# ---- the metrics ----------------------------------------------------------------------------------------------


def test_forgetting_metrics_equal_hand_computation():
    matrix = [
        [0.50, 0.30, 0.20],  # stage 0: probes
        [0.90, 0.40, 0.25],  # after task 1
        [0.70, 0.80, 0.35],  # after task 2
        [0.60, 0.75, 0.85],
    ]  # after task 3
    m = sequence_metrics(matrix)
    assert m["average_accuracy"] == pytest.approx((0.60 + 0.75 + 0.85) / 3)
    assert m["forgetting"] == pytest.approx([0.90 - 0.60, 0.80 - 0.75, 0.0])
    assert m["bwt"] == pytest.approx(((0.60 - 0.90) + (0.75 - 0.80)) / 2)
    assert m["fwt"] == pytest.approx(((0.40 - 0.30) + (0.35 - 0.20)) / 2)
    assert m["learning_accuracy"] == pytest.approx([0.90, 0.80, 0.85])
    seeds = aggregate_seeds(
        [{"seed": 0, "bwt": -0.2, "tasks": ["a"]}, {"seed": 1, "bwt": -0.4, "tasks": ["a"]}], ("bwt",)
    )
    assert seeds["bwt"] == pytest.approx(-0.3) and seeds["bwt_std"] == pytest.approx(0.1414, abs=1e-3)


def test_reservoir_is_uniform():
    counts = torch.zeros(50)
    for seed in range(2000):
        for item in reservoir(list(range(50)), 5, seed):
            counts[item] += 1
    expected = 2000 * 5 / 50  # 200 per item; binomial sd ~ 13.4
    assert (counts - expected).abs().max() < 5 * 13.4
    assert len(set(reservoir(list(range(50)), 5, 0))) == 5


# ---- EWC and the Fisher -----------------------------------------------------------------------------------------


def _tiny_classifier(num_labels=3):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config)


def _finished(model, n=24, batch=1, num_labels=3):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30, (n, 6), generator=gen)
    gold = torch.randint(0, num_labels, (n,), generator=gen)

    def log_probs(b):
        return torch.log_softmax(model(input_ids=b["input_ids"]).logits.float(), -1), b["labels"]

    examples = [{"input_ids": ids[i : i + batch], "labels": gold[i : i + batch]} for i in range(0, n, batch)]
    return FinishedTask(examples, log_probs, num_labels, "sequence")


def test_ewc_penalty_and_gradient_equal_a_hand_computation():
    model = _tiny_classifier()
    ewc = EWC(strength=7.0, exclude=["classifier.weight", "classifier.bias"])
    ewc.end_task(model, _finished(model))
    fisher, star = ewc.anchors[0]
    assert "classifier.weight" not in fisher and len(fisher) > 5
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    penalty = ewc.penalty(model)
    params = dict(model.named_parameters())
    hand = 0.5 * 7.0 * sum(float((fisher[n] * (params[n].detach() - star[n]) ** 2).sum()) for n in fisher)
    assert float(penalty.detach()) == pytest.approx(hand, rel=1e-5)
    penalty.backward()
    for n in fisher:  # d/dθ (λ/2) F (θ-θ*)² = λ F (θ-θ*)
        torch.testing.assert_close(params[n].grad, 7.0 * fisher[n] * (params[n].detach() - star[n]))


def test_exact_and_empirical_fisher_agree_in_ranking_and_batch_fisher_is_rescaled():
    model = _tiny_classifier()
    params = {n: p for n, p in model.named_parameters() if not n.startswith("classifier")}
    exact = fisher_diagonal(model, params, _finished(model, n=64), "exact")
    empirical = fisher_diagonal(model, params, _finished(model, n=64), "empirical")
    batch = fisher_diagonal(model, params, _finished(model, n=64, batch=16), "batch")
    flat = {
        k: torch.cat([f[n].flatten() for n in params])
        for k, f in (("exact", exact), ("emp", empirical), ("batch", batch))
    }

    def spearman(x, y):
        rx, ry = x.argsort().argsort().double(), y.argsort().argsort().double()
        return float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])

    assert spearman(flat["exact"], flat["emp"]) > 0.8
    # rescaled by the batch size, the batched estimate has the per-example Fisher's size (unscaled: ~1/16 of it)
    ratio = float(flat["batch"].sum() / flat["exact"].sum())
    assert 0.25 < ratio < 4, ratio


def test_recadam_pull_per_step_does_not_depend_on_the_learning_rate():
    pulls = []
    for lr in (2e-5, 1e-4):
        model = torch.nn.Linear(4, 4)
        r = RecAdam(5000.0, lr=lr, k=0.1, t0=0.5)
        r.setup(model)
        before = model.weight.detach().clone()
        with torch.no_grad():
            model.weight.add_(1.0)
        r.after_step(model, lr, 0, 100)  # early: lambda(t) ~ 0, the pull dominates
        pulls.append(float((model.weight.detach() - before - 1.0).mean()))
    assert pulls[0] == pytest.approx(pulls[1], rel=1e-6) and pulls[0] < -0.09  # ~ -lr·gamma = -0.1 of the offset


# ---- whole sequences ------------------------------------------------------------------------------------------


def test_sequence_writes_the_interface(two_tasks, tiny_checkpoint, tmp_path):
    from transformers import pipeline

    naive = run_continual(
        settings(two_tasks, tiny_checkpoint, save_models=True), tmp_path / "naive", show_progress=False
    )
    for key in (
        "tasks",
        "accuracy_matrix",
        "average_accuracy",
        "forgetting",
        "bwt",
        "probe_recovered_accuracy",
        "mlm_loss",
        "delta_mlm",
        "method",
        "seconds_per_stage",
    ):
        assert key in naive, key
    assert len(naive["accuracy_matrix"]) == 3 and len(naive["accuracy_matrix"][0]) == 2
    assert naive["accuracy_matrix"][1][0] > 0.8  # task A is learned
    assert naive["forgetting"][0] == pytest.approx(naive["accuracy_matrix"][1][0] - naive["accuracy_matrix"][2][0])
    assert (tmp_path / "naive" / "report.html").read_text().startswith("<!doctype html>")
    assert "Accuracy matrix" in (tmp_path / "naive" / "report.md").read_text()
    seed = json.loads((tmp_path / "naive" / "seed-0" / "summary.json").read_text())
    classify = pipeline("text-classification", model=seed["models"][1])  # task B's head over the final encoder
    assert classify(" ".join(WORDS[20:25]))[0]["label"] in ("left", "right")


def test_ewc_with_huge_lambda_keeps_the_weights_task_a_needs(two_tasks, tiny_checkpoint, tmp_path):
    drift = {}
    for method in ("naive", "ewc"):
        cfg = settings(two_tasks, tiny_checkpoint, method=method, ewc_lambda=1e9, general_corpus="")
        seq = Sequence(cfg, build_cure(method, cfg), load_tasks(cfg), tmp_path / method / "seed-0", 0, False)
        if method == "naive":  # the same Fisher and anchor, computed outside the loop: no pull
            seq.regs = []
            ewc = EWC(0.0, exclude=seq.cm.head_names())
        seq.stage(0, False, None)
        if method == "naive":
            ewc.end_task(seq.cm, held_out_task(seq.cm, seq.data[0], "auto", 8, seq.pad, 0))
        else:
            ewc = seq.regs[0]
        fisher, star = ewc.anchors[0]
        seq.stage(1, False, None)
        params = dict(seq.cm.named_parameters())
        needed = [n for n, f in fisher.items() if f.max() > 0]
        drift[method] = sum(
            float(((params[n].detach() - star[n]).abs() * (fisher[n] > fisher[n].mean())).sum()) for n in needed
        ) / sum(int((fisher[n] > fisher[n].mean()).sum()) for n in needed)
    assert ewc.estimators == ["exact"]  # no Fisher after the last task: nothing follows that would use it
    # Adam keeps stepping ~lr, so "kept" means an oscillation around theta*, far below naive's drift
    assert drift["ewc"] < 0.3 * drift["naive"], drift


def test_frozen_encoder_has_zero_delta_mlm_and_an_adapter_is_scored_as_it_acts(two_tasks, tiny_checkpoint, tmp_path):
    frozen = run_continual(
        settings(two_tasks, tiny_checkpoint, method="freeze", freeze_layers=2), tmp_path / "f", show_progress=False
    )
    assert frozen["delta_mlm"] == pytest.approx(0.0, abs=1e-6)
    cfg = settings(two_tasks, tiny_checkpoint, method="lora", lr=3e-2)
    seq = Sequence(cfg, build_cure("lora", cfg), load_tasks(cfg), tmp_path / "lora" / "seed-0", 0, False)
    before = seq.probe_head.masked_loss(seq.cm, 0, seq.general.eval_batches, "fp32")
    seq.stage(0, False, None)
    after = seq.probe_head.masked_loss(seq.cm, 0, seq.general.eval_batches, "fp32")
    with seq.cm.peft.disable_adapter():
        disabled = seq.probe_head.masked_loss(seq.cm, 0, seq.general.eval_batches, "fp32")
    assert disabled == pytest.approx(before, abs=1e-6)  # the adapter off: the start, exactly
    assert abs(after - before) > 1e-4  # on: the trained adapter's drift shows


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_peft_heads_and_adapters_survive_save_and_load(two_tasks, tiny_checkpoint, tmp_path, method):
    cfg = settings(two_tasks, tiny_checkpoint, method=method, lr=3e-2, max_steps=6)
    tasks = load_tasks(cfg)
    seq = Sequence(cfg, build_cure(method, cfg), tasks, tmp_path / "a" / "seed-0", 0, False)
    seq.stage(0, False, None)
    seq.stage(1, False, None)
    seq.cm.save_pretrained(tmp_path / "saved")
    other = Sequence(
        cfg, build_cure(method, cfg), tasks, tmp_path / "b" / "seed-0", 5, False
    )  # other seed: other heads
    batch = {k: v for k, v in collate(seq.data[0].test[:8], seq.pad).items() if k != "labels"}
    seq.cm.eval(), other.cm.eval()
    assert not torch.allclose(seq.cm.tasks[0](**batch).logits, other.cm.tasks[0](**batch).logits)
    other.cm.load(tmp_path / "saved")
    for j in range(2):
        torch.testing.assert_close(seq.cm.tasks[j](**batch).logits, other.cm.tasks[j](**batch).logits)


def test_resume_mid_stage_is_exact(two_tasks, tiny_checkpoint, tmp_path):
    cfg = settings(two_tasks, tiny_checkpoint, method="ewc+replay", dropout=0.1)
    whole = run_continual(cfg, tmp_path / "whole", show_progress=False)
    from safetensors.torch import load_file

    a = load_file(tmp_path / "whole" / "seed-0" / "model" / "model.safetensors")
    for halt in ((1, 5), (2, 5)):  # killed inside the first stage (no model/ yet) and inside the second
        out = tmp_path / f"cut-{halt[0]}"
        assert run_continual(cfg, out, show_progress=False, halt=halt) is None
        with pytest.raises(UserError, match="already holds"):
            run_continual(cfg, out, show_progress=False)
        with pytest.raises(UserError, match="max_steps differ"):
            run_continual(
                build_continual_config({**_fields(cfg), "max_steps": 99}), out, show_progress=False, resume=True
            )
        resumed = run_continual(cfg, out, show_progress=False, resume=True)
        assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
        assert resumed["mlm_loss"] == pytest.approx(whole["mlm_loss"], abs=1e-6)
        b = load_file(out / "seed-0" / "model" / "model.safetensors")
        for name in a:
            torch.testing.assert_close(a[name], b[name], msg=name)


def _fields(cfg):
    import dataclasses

    return dataclasses.asdict(cfg)


def test_recadam_anneals_the_shared_weights_but_not_the_new_head(two_tasks, tiny_checkpoint, tmp_path):
    # t0 = the whole stage and a sharp sigmoid: lambda(t) ~ 0 throughout, so only the pull acts on the encoder
    cfg = settings(two_tasks, tiny_checkpoint, method="recadam", recadam_t0=1.0, recadam_k=50.0, general_corpus="")
    seq = Sequence(cfg, build_cure("recadam", cfg), load_tasks(cfg), tmp_path / "r" / "seed-0", 0, False)
    start = {n: p.detach().clone() for n, p in seq.cm.named_parameters()}
    seq.stage(0, False, None)
    heads = set(seq.cm.head_names())
    moved = {n: float((p.detach() - start[n]).abs().max()) for n, p in seq.cm.named_parameters()}
    assert max(v for n, v in moved.items() if n not in heads) < 1e-5
    assert max(v for n, v in moved.items() if n.startswith("tasks.0.") and n in heads) > 1e-3


def test_compare_draws_the_tradeoff_for_several_methods(two_tasks, tiny_checkpoint, tmp_path):
    from masklab.report.compare import compare_runs

    for method in ("naive", "l2sp"):
        run_continual(
            settings(two_tasks, tiny_checkpoint, method=method, general_corpus="", max_steps=6),
            tmp_path / method,
            show_progress=False,
        )
    table = compare_runs([tmp_path / "naive", tmp_path / "l2sp"], tmp_path / "cmp")
    assert "naive" in table and "l2sp α=0.01" in table
    assert (tmp_path / "cmp" / "tradeoff.png").stat().st_size > 1000


# ---- bad input ------------------------------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "masklab.cli", "continual", "--quiet", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "ewc_lambda=-1"], "ewc_lambda must be >= 0"),
        (["--method", "forgetful"], "unknown continual_method 'forgetful'"),
        (["--method", "lora+prompt"], "both wrap the encoder"),
        (["--method", "lora", "--set", "target_modules=nonexistent"], "peft could not add a lora adapter"),
        (["--method", "replay", "--set", "replay_min=100000"], "replay memory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(two_tasks, tiny_checkpoint, tmp_path, extra, message):
    a, b, general = two_tasks
    out = tmp_path / "run"
    result = _cli(
        "--tasks",
        f"{a},{b}",
        "--init",
        str(tiny_checkpoint),
        "--max-steps",
        "2",
        "--set",
        "reference=false",
        "--set",
        f"general_corpus={general}",
        "--set",
        "max_length=24",
        "--out",
        str(out),
        *extra,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_one_task_and_a_changed_task_list_are_refused(two_tasks, tiny_checkpoint, tmp_path):
    a, b, general = two_tasks
    result = _cli("--tasks", a, "--init", str(tiny_checkpoint), "--out", str(tmp_path / "one"))
    assert result.returncode == 2 and "at least two tasks" in result.stderr
    cfg = settings(two_tasks, tiny_checkpoint, general_corpus="", max_steps=4)
    assert run_continual(cfg, tmp_path / "r", show_progress=False, halt=(1, 2)) is None
    result = _cli("--tasks", f"{b},{a}", "--init", str(tiny_checkpoint), "--out", str(tmp_path / "r"), "--resume")
    assert result.returncode == 2 and "was started with tasks" in result.stderr, result.stderr
    assert (tmp_path / "r" / "seed-0" / "stage-1" / "checkpoint").exists()  # nothing lost


def test_prompt_tuning_refuses_token_tasks(two_tasks, tiny_checkpoint, tmp_path):
    conll = tmp_path / "tags.conll"
    conll.write_text("".join(f"w{i} {'A' if i % 2 else 'B'}\nw{i + 1} B\n\n" for i in range(40)), encoding="utf-8")
    a, _, general = two_tasks
    cfg = build_continual_config(
        {
            "tasks": f"{a},{conll}",
            "init": str(tiny_checkpoint),
            "method": "prompt",
            "general_corpus": "",
            "reference": False,
        }
    )
    with pytest.raises(UserError, match="shifts a token task's labels"):
        Sequence(cfg, build_cure("prompt", cfg), load_tasks(cfg), tmp_path / "p", 0, False)
    assert peft_config(build_cure("prompt", cfg), cfg).num_virtual_tokens == 20


def test_a_kill_between_the_summary_and_the_report_is_finished_by_resume(
    two_tasks, tiny_checkpoint, tmp_path, monkeypatch
):

    cfg = settings(two_tasks, tiny_checkpoint, method="naive")
    out = tmp_path / "seq"
    written = continual_run.write_report

    def killed(*args):
        raise KeyboardInterrupt  # the process dies after summary.json, before report.md / report.html

    monkeypatch.setattr(continual_run, "write_report", killed)
    with pytest.raises(KeyboardInterrupt):
        run_continual(cfg, out, show_progress=False)
    assert (out / "summary.json").exists() and not (out / "report.md").exists()
    monkeypatch.setattr(continual_run, "write_report", written)
    resumed = run_continual(cfg, out, show_progress=False, resume=True)
    assert (out / "report.md").exists() and (out / "report.html").exists()
    assert resumed == json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with pytest.raises(UserError, match="holds a finished continual run"):
        run_continual(cfg, out, show_progress=False, resume=True)
