"""The one loop through fine-tuning: exact --resume, several objectives at once, penalties, bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file

from masklab.errors import UserError
from masklab.finetune.config import build_finetune_config
from masklab.finetune.run import run_finetune


def model_weights(path):
    return load_file(str(path / "seed-0" / "model" / "model.safetensors"))


def records(path, seed="seed-0"):
    return [json.loads(line) for line in (path / seed / "metrics.jsonl").read_text().splitlines()]


def test_finetune_resume_after_kill_gives_identical_weights(separable_task, tiny_checkpoint, tmp_path, finetune_config):
    # dropout on, so the restored random stream matters as much as weights and optimizer state
    cfg = finetune_config(
        separable_task, str(tiny_checkpoint), mode="full", max_steps=24, eval_every=6, dropout=0.1, save_model=True
    )
    straight = run_finetune(cfg, tmp_path / "straight", show_progress=False)
    assert run_finetune(cfg, tmp_path / "split", show_progress=False, halt_at_step=9) is None
    assert torch.load(tmp_path / "split" / "seed-0" / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 9
    resumed = run_finetune(cfg, tmp_path / "split", show_progress=False, resume=True)
    a, b = model_weights(tmp_path / "straight"), model_weights(tmp_path / "split")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    assert (
        resumed["test_accuracy"] == straight["test_accuracy"] and resumed["best_val_step"] == straight["best_val_step"]
    )
    # the log of the resumed run is the uninterrupted run's log, apart from timings
    keep = ("step", "loss", "val_accuracy", "trainable")
    strip = lambda rs: [{k: r[k] for k in keep if k in r} for r in rs]  # noqa: E731
    assert strip(records(tmp_path / "split")) == strip(records(tmp_path / "straight"))
    assert not (tmp_path / "split" / "seed-0" / "checkpoint").exists()  # only --resume needed it
    with pytest.raises(UserError, match="finished fine-tuning run"):
        run_finetune(cfg, tmp_path / "split", show_progress=False, resume=True)
    with pytest.raises(UserError, match="--resume"):
        run_finetune(cfg, tmp_path / "split", show_progress=False)
    with pytest.raises(UserError, match="holds no fine-tuning run"):
        run_finetune(cfg, tmp_path / "nothing-here", show_progress=False, resume=True)


def test_classification_with_mlm_batches_logs_each_loss(
    separable_task, tiny_checkpoint, tmp_path, finetune_config, run_seed
):
    cfg = finetune_config(
        separable_task,
        str(tiny_checkpoint),
        mode="full",
        max_steps=40,
        log_every=10,
        objectives={"classify": 1.0, "mlm": 0.5},
    )
    summary = run_seed(cfg, tmp_path)
    lines = [r for r in records(tmp_path) if "loss" in r]
    assert [r["step"] for r in lines] == [10, 20, 30, 40]
    for r in lines:  # the total is the weighted sum the loop writes down: 1 * classify + 0.5 * mlm
        assert r["loss"] == pytest.approx(r["loss_classify"] + 0.5 * r["loss_mlm"], rel=1e-5)
    first, last = lines[0], lines[-1]
    assert last["loss_mlm"] < first["loss_mlm"]  # the MLM head learns the task text's words
    assert summary["test_accuracy"] > 0.85 and set(summary["final_train_losses"]) == {"classify", "mlm"}
    assert summary["objectives"] == {"classify": 1.0, "mlm": 0.5}


def test_l2sp_keeps_the_encoder_near_its_start(separable_task, tiny_checkpoint, tmp_path, finetune_config, run_seed):
    base = dict(mode="full", max_steps=40, lr=1e-2, weight_decay=0.0)
    free = run_seed(finetune_config(separable_task, str(tiny_checkpoint), **base), tmp_path / "free")
    held = run_seed(
        finetune_config(separable_task, str(tiny_checkpoint), regularizers={"l2sp": 10.0}, **base), tmp_path / "held"
    )
    for layer in ("layer_0", "layer_1"):
        assert held["layers"]["weight_change"][layer] < 0.7 * free["layers"]["weight_change"][layer], layer


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["objectives.ctc=1"], "unknown objective 'ctc' in objectives; choose from: classify, mlm"),
        (["objectives.mlm=0"], "objectives.mlm must be a number > 0"),
        (["objectives.mlm=-0.5"], "objectives.mlm must be a number > 0"),
        (["objectives={mlm: 1}"], "objectives must include classify"),
        (["regularizers.ewc=1"], "unknown regularizer 'ewc'"),
        (["objectives.mlm"], "--set expects key=value or key.subkey=value"),
    ],
)
def test_bad_objective_settings_are_one_line(overrides, fragment):
    with pytest.raises(UserError) as info:
        build_finetune_config({}, overrides)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_objectives_dot_key_adds_to_the_default():
    assert build_finetune_config({}, ["objectives.mlm=0.5"]).objectives == {"classify": 1.0, "mlm": 0.5}
    assert build_finetune_config({}, []).objectives == {"classify": 1.0}
