"""One encoder, one head per task: the model a task sequence trains.

Each task gets its own transformers *ForSequenceClassification / *ForTokenClassification model whose
encoder attribute is the same module, so a task is always scored with its own head over the current
encoder (task-incremental learning). Adapters come from `peft.get_peft_model` on that encoder: LoRA and
IA3 inject their layers in place (every task model sees them), prompt and prefix tuning need peft's
forward, so the task models call the PeftModel instead. Heads live outside peft, in our own state,
which avoids peft's lost-classifier pitfall: `save`/`load` keep every head and adapter together.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from peft import get_peft_model
from safetensors.torch import load_model, save_model
from torch import nn

from masklab.data.tasks import Task
from masklab.errors import UserError
from masklab.finetune.modes import anatomy
from masklab.finetune.start import _head_class, load_start
from masklab.models import apply_dropout

PEFT_MARKERS = ("lora_", "ia3_", "prompt_encoder")  # parameter names peft gives its adapter weights


class ContinualModel(nn.Module):
    def __init__(self, task_models: list):
        super().__init__()
        self.tasks = nn.ModuleList(task_models)  # task i's model; all share one encoder module
        self.prefix = task_models[0].base_model_prefix
        self.encoder = task_models[0].base_model  # the raw transformers encoder (adapters injected in place)
        self.peft = None  # the PeftModel managing the adapters, when the method has one
        self.adapter_kind = ""
        self.per_task = False

    # ---- adapters ------------------------------------------------------------------------------------
    def add_adapter(self, kind: str, peft_config, per_task: bool) -> None:

        adapters = [f"task_{i}" for i in range(len(self.tasks))] if per_task else ["shared"]
        try:
            self.peft = get_peft_model(self.encoder, copy.deepcopy(peft_config), adapter_name=adapters[0])
            for name in adapters[1:]:
                self.peft.add_adapter(name, copy.deepcopy(peft_config))
        except ValueError as exc:  # e.g. target modules the model does not have
            raise UserError(
                f"peft could not add a {kind} adapter: {str(exc).splitlines()[0][:200]}; "
                "set target_modules to module names the model has (e.g. target_modules=query,value)"
            ) from None
        self.adapter_kind, self.per_task = kind, per_task
        if kind in ("prompt", "prefix"):  # virtual tokens are added in peft's forward: the task models call it
            for m in self.tasks:
                setattr(m, self.prefix, self.peft)

    def activate(self, task: int) -> None:
        """Use task `task`'s adapter (per-task adapters), for training or scoring that task."""
        if self.peft is not None and self.per_task:
            self.peft.set_adapter(f"task_{task}")

    def adapter_name(self, task: int) -> str:
        return f"task_{task}" if self.per_task else "shared"

    # ---- what trains -----------------------------------------------------------------------------------
    def head_parameters(self, task: int) -> list[tuple[str, nn.Parameter]]:
        shared = {p.data_ptr() for p in self.encoder.parameters()} | (
            {p.data_ptr() for p in self.peft.parameters()} if self.peft is not None else set()
        )
        return [(n, p) for n, p in self.tasks[task].named_parameters() if p.data_ptr() not in shared]

    def head_names(self) -> list[str]:
        """Full parameter names of every task's head (regularizers leave these free)."""
        ptrs = {p.data_ptr() for i in range(len(self.tasks)) for _, p in self.head_parameters(i)}
        return [n for n, p in self.named_parameters() if p.data_ptr() in ptrs]

    def set_trainable(self, heads: list[int], task: int, freeze_layers: int) -> None:
        """Only the given tasks' heads and, over them, the encoder (or the active adapter), minus frozen layers."""

        for p in self.parameters():
            p.requires_grad_(False)
        for i in heads:
            for _, p in self.head_parameters(i):
                p.requires_grad_(True)
        if self.peft is not None:
            adapter = self.adapter_name(task)
            for n, p in self.peft.named_parameters():
                if any(m in n for m in PEFT_MARKERS) and (f".{adapter}." in n or n.endswith(f".{adapter}")):
                    p.requires_grad_(True)
            return
        a = anatomy(self.tasks[task])
        frozen = (
            {"embeddings", *[f"layer_{i}" for i in range(min(freeze_layers, a.num_layers))]} if freeze_layers else set()
        )
        if freeze_layers > a.num_layers:
            raise UserError(
                f"freeze_layers={freeze_layers} but the model has {a.num_layers} encoder layers; "
                f"use freeze_layers <= {a.num_layers}"
            )
        params = dict(self.tasks[task].named_parameters())
        encoder = {p.data_ptr() for p in self.encoder.parameters()}
        for group, names in a.groups.items():
            for n in names:  # the "head" group also holds encoder parts above the layers (BERT's pooler): those train
                if group not in frozen and (group != "head" or params[n].data_ptr() in encoder):
                    params[n].requires_grad_(True)

    # ---- scoring ---------------------------------------------------------------------------------------
    def hidden_states(self, task: int, batch: dict) -> torch.Tensor:
        """(B, T, H) last-layer states over the batch's own tokens, through task `task`'s adapter
        (prompt tuning's virtual tokens are cut off the front)."""
        self.activate(task)
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask") if k in batch}
        module = self.peft if self.adapter_kind in ("prompt", "prefix") else self.encoder
        hidden = module(**inputs).last_hidden_state
        return hidden[:, -batch["input_ids"].shape[1] :]

    def plain_model(self, task: int):
        """Task `task`'s model as a plain transformers checkpoint (LoRA / IA3 merged in), or None when the
        adapter cannot be merged (prompt / prefix tuning live in the input)."""
        if self.adapter_kind in ("prompt", "prefix"):
            return None
        model = copy.deepcopy(self.tasks[task])
        if self.peft is not None:
            peft = copy.deepcopy(self.peft)
            peft.set_adapter(self.adapter_name(task))
            setattr(model, self.prefix, peft.merge_and_unload(adapter_names=[self.adapter_name(task)]))
        return model

    def save_pretrained(self, path, safe_serialization: bool = True) -> None:
        """Every head and adapter with the shared encoder, as one safetensors file (the loop's checkpoints)."""

        Path(path).mkdir(parents=True, exist_ok=True)
        save_model(self, str(Path(path) / "model.safetensors"))

    def load(self, path) -> None:

        missing, unexpected = load_model(self, str(Path(path) / "model.safetensors"), strict=False)
        if unexpected:
            raise UserError(
                f"{path} was written by a different continual model ({len(unexpected)} unknown weights, "
                f"e.g. {unexpected[0]}); resume with the same --init, --tasks and --method"
            )


def build_model(init: str, arch: str, tasks: list[Task], dropout: float, seed: int, tokenizer_for_preset):
    """(ContinualModel, tokenizer, source): the start's encoder under one new head per task, seeded by `seed`."""
    first, tokenizer, source = load_start(
        init, arch, tasks[0].kind, tasks[0].label_names, dropout, seed, tokenizer_for_preset
    )
    models = [first]
    for i, task in enumerate(tasks[1:], 1):
        config = copy.deepcopy(first.config)
        config.num_labels = len(task.label_names)
        config.id2label = dict(enumerate(task.label_names))
        config.label2id = {n: k for k, n in enumerate(task.label_names)}
        apply_dropout(config, dropout, dropout)
        torch.manual_seed(seed * 1000 + i)
        model = _head_class(task.kind).from_config(config, attn_implementation="sdpa")
        setattr(model, model.base_model_prefix, first.base_model)
        models.append(model)
    return ContinualModel(models), tokenizer, source
