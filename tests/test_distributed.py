"""Two processes (gloo on CPU, launched by accelerate) against one process with twice the batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_overrides

LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--main_process_port",
    "29533",
    "-m",
    "masklab.cli",
]
# the form `pretrain --help` once showed: accelerate's simple launcher, which starts one process whatever N is
LAUNCH_CPU = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--cpu",
    "--num_processes",
    "2",
    "--main_process_port",
    "29534",
    "-m",
    "masklab.cli",
]
WARNING = "masklab: warning:"
SINGLE = [sys.executable, "-m", "masklab.cli"]


def pretrain(prefix, corpus, out, batch, *extra, steps=12):
    sets = tiny_overrides(
        corpus,
        train__max_steps=steps,
        train__batch_size=batch,
        train__log_every=1,
        train__eval_every=0,
        train__save_every=6,
        model__hidden_size=64,
        model__intermediate_size=128,
    )
    args = [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*prefix, "pretrain", "--quiet", "--out", str(out), *args, *extra], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def losses(run_dir):
    return [r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_two_processes_follow_one_process_with_double_batch(corpus_file, tmp_path):
    pretrain(SINGLE, corpus_file, tmp_path / "one", 8)
    launched = pretrain(LAUNCH, corpus_file, tmp_path / "two", 4)
    assert WARNING not in launched.stderr  # two processes asked, two run
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    # only the main process logs: one line per step, not two
    assert len(one) == len(two) == 12
    # same blocks and masks on both sides; only the averaging of per-process means differs
    assert two == pytest.approx(one, rel=2e-2)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["train_tokens"] == 12 * 8 * 32
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoint",
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
    ]


def test_fewer_processes_than_asked_warns_once(corpus_file, tmp_path):
    done = pretrain(LAUNCH_CPU, corpus_file, tmp_path / "cpu", 4, steps=2)
    assert (
        json.loads((tmp_path / "cpu" / "summary.json").read_text())["processes"] == 1
    )  # what accelerate really starts
    warnings = [line for line in done.stderr.splitlines() if line.startswith(WARNING)]
    assert len(warnings) == 1 and "asked for several processes but started one" in warnings[0]
    assert "--multi_gpu --num_processes N" in warnings[0]


@pytest.mark.parametrize(
    "env, processes, says",
    [
        ({"WORLD_SIZE": "2"}, 2, None),  # torchrun / --multi_gpu: as asked
        ({"WORLD_SIZE": "4"}, 2, "asked for 4 processes (WORLD_SIZE) but this run has 2"),
        (
            {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
            1,
            "asked for several",
        ),  # --cpu, N > 1
        ({"ACCELERATE_USE_CPU": "True"}, 1, None),  # accelerate launch --cpu with one process: as asked
        ({}, 1, None),  # no launcher
    ],
)
def test_process_shortfall(env, processes, says):
    from masklab.runtime import process_shortfall

    line = process_shortfall(processes, env)
    assert (line is None) if says is None else (says in line and "\n" not in line)


def test_multi_process_run_resumes_exactly(corpus_file, tmp_path):
    pretrain(LAUNCH, corpus_file, tmp_path / "straight", 4)
    pretrain(LAUNCH, corpus_file, tmp_path / "paused", 4, "--stop-at-step", "6")
    assert torch.load(tmp_path / "paused" / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 6
    pretrain(LAUNCH, corpus_file, tmp_path / "paused", 4, "--resume")
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "paused" / "checkpoint" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_finetuning_runs_in_two_processes(separable_task, tiny_checkpoint, tmp_path):
    args = [
        "finetune",
        "--task",
        str(separable_task),
        "--init",
        str(tiny_checkpoint),
        "--max-steps",
        "30",
        "--lr",
        "3e-3",
        "--quiet",
        "--out",
        str(tmp_path / "ft"),
        "--set",
        "precision=fp32",
        "--set",
        "batch_size=8",
        "--set",
        "analysis_examples=16",
        "--set",
        "log_every=5",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*LAUNCH, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1 and done.stdout.count("| run | init |") == 1, (
        done.stdout
    )  # one summary, not one per process
    summary = json.loads((tmp_path / "ft" / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.85  # separable by vocabulary: chance is 0.5
    lines = [
        r
        for r in map(json.loads, (tmp_path / "ft" / "seed-0" / "metrics.jsonl").read_text().splitlines())
        if "loss" in r
    ]
    assert [r["step"] for r in lines] == [5, 10, 15, 20, 25, 30]  # the main process logs, once per log step
    assert (tmp_path / "ft" / "seed-0" / "model" / "model.safetensors").exists()
