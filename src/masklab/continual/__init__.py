"""Continual learning: task sequences, the accuracy matrix and forgetting metrics, and the cures.

config.py   ContinualConfig and the built-in sequences (builtin:seq-en)
methods.py  the cures as registry entries: naive, joint, ewc, l2sp, recadam, replay, mlm-mix, lora, ia3, prompt,
            prefix, freeze
model.py    one encoder under one head per task, peft adapters around it
memory.py   the replay memory (reservoir sampling)
probe.py    linear probes on the frozen encoder
general.py  general knowledge: masked-LM loss and pseudo-perplexity through the start's MLM head
metrics.py  average accuracy, forgetting, BWT, FWT from the accuracy matrix
run.py      the stage loop, resume, summaries
"""

from masklab.continual.config import ContinualConfig, build_continual_config, load_continual_config
from masklab.continual.run import run_continual

__all__ = ["ContinualConfig", "build_continual_config", "load_continual_config", "run_continual"]
