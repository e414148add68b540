"""The cures for forgetting, one registry entry each (`--method NAME`, several joined by `+`).

A cure is a set of changes to an ordinary fine-tuning stage of the one loop, and nothing else:
regularizers in the loss (ewc, l2sp, recadam), extra terms in the objective list (replay: batches
from a memory of earlier tasks; mlm-mix: masked-LM batches of general text; joint: every task so far),
a peft adapter around the encoder (lora, ia3, prompt, prefix), or frozen lower layers (freeze).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masklab.continual.config import ContinualConfig
from masklab.errors import UserError
from masklab.registry import build, names, register

ADAPTERS = ("lora", "ia3", "prompt", "prefix")
ADAPTER_LR = {
    "lora": 2e-3,
    "ia3": 3e-3,
    "prompt": 3e-2,
    "prefix": 3e-2,
}  # lora measured: 5e-4 learned nothing in one 63-step epoch
FULL_LR = 1e-4  # measured on rt-sentiment -> sotu-era with MiniLM: 5e-5 left sotu-era under-trained in one epoch


@dataclass
class Cure:
    regularizers: dict[str, float] = field(default_factory=dict)  # name -> strength (masklab.regularizers)
    replay: bool = False
    mlm_mix: bool = False
    joint: bool = False
    adapter: str = ""  # one of ADAPTERS, or "" for the full weights
    freeze_layers: int = 0

    def merge(self, other: "Cure") -> "Cure":
        if self.adapter and other.adapter:
            raise UserError(
                f"methods {self.adapter} and {other.adapter} both wrap the encoder; combine an adapter "
                "with a regularizer, replay, mlm-mix or freeze instead"
            )
        return Cure(
            {**self.regularizers, **other.regularizers},
            self.replay or other.replay,
            self.mlm_mix or other.mlm_mix,
            self.joint or other.joint,
            self.adapter or other.adapter,
            max(self.freeze_layers, other.freeze_layers),
        )

    def learning_rate(self, cfg: ContinualConfig) -> float:
        return cfg.lr or ADAPTER_LR.get(self.adapter, FULL_LR)

    def strength(self, cfg: ContinualConfig) -> str:
        """The settings that set how hard this cure holds on, for labels: 'ewc λ=1000, replay 1%'."""
        parts = [
            f"{name} {'λ' if name == 'ewc' else 'α' if name == 'l2sp' else 'γ'}={value:g}"
            for name, value in self.regularizers.items()
        ]
        if self.replay:
            parts.append(f"replay {cfg.replay_fraction:.0%} (≥{cfg.replay_min})")
        if self.mlm_mix:
            parts.append(f"mlm-mix w={cfg.mlm_weight:g}")
        if self.adapter == "lora":
            parts.append(f"lora r={cfg.lora_r}")
        elif self.adapter in ("prompt", "prefix"):
            parts.append(f"{self.adapter} {cfg.virtual_tokens} tokens")
        elif self.adapter:
            parts.append(self.adapter)
        if self.freeze_layers:
            parts.append(f"freeze {self.freeze_layers} layers")
        return ", ".join(parts) or ("joint" if self.joint else "naive")


@register("continual_method", "naive")
def _naive(cfg: ContinualConfig) -> Cure:
    return Cure()


@register("continual_method", "joint")
def _joint(cfg: ContinualConfig) -> Cure:
    return Cure(joint=True)


@register("continual_method", "ewc")
def _ewc(cfg: ContinualConfig) -> Cure:
    return Cure(regularizers={"ewc": cfg.ewc_lambda})


@register("continual_method", "l2sp")
def _l2sp(cfg: ContinualConfig) -> Cure:
    return Cure(regularizers={"l2sp": cfg.l2sp})


@register("continual_method", "recadam")
def _recadam(cfg: ContinualConfig) -> Cure:
    return Cure(regularizers={"recadam": cfg.recadam})


@register("continual_method", "replay")
def _replay(cfg: ContinualConfig) -> Cure:
    return Cure(replay=True)


@register("continual_method", "mlm-mix")
def _mlm_mix(cfg: ContinualConfig) -> Cure:
    return Cure(mlm_mix=True)


@register("continual_method", "freeze")
def _freeze(cfg: ContinualConfig) -> Cure:
    return Cure(freeze_layers=cfg.freeze_layers)


def _adapter(name: str):
    def make(cfg: ContinualConfig) -> Cure:
        return Cure(adapter=name)

    return make


for _name in ADAPTERS:
    register("continual_method", _name)(_adapter(_name))


def build_cure(method: str, cfg: ContinualConfig) -> Cure:
    """`ewc+replay` -> one Cure; each part must be a known method."""
    parts = [p.strip() for p in method.split("+") if p.strip()]
    if not parts:
        raise UserError(
            "method must name a cure, e.g. naive, ewc or lora+replay; choose from: "
            f"{', '.join(names('continual_method'))}"
        )
    cure = Cure()
    for part in parts:
        cure = cure.merge(build("continual_method", part, cfg))
    if cure.joint and len(parts) > 1:
        raise UserError(
            "joint trains on every task at once (the upper bound); it combines with nothing, use --method joint"
        )
    if cure.adapter and cure.freeze_layers:
        raise UserError(
            f"{cure.adapter} already keeps every encoder weight fixed; freeze adds nothing to it, use one of them"
        )
    if cure.mlm_mix and cure.adapter in ("prompt", "prefix"):
        raise UserError(
            f"mlm-mix trains the shared encoder's masked-LM head, which {cure.adapter} tuning does not reach; "
            "combine mlm-mix with the full weights, lora or ia3"
        )
    return cure
