"""Phase settings (pretrain / probe / fine-tune) with the paper's values as defaults.

The defaults are those of the paper runs (IGNF/MAESTRO's ``maestro/conf/opt.py`` and README
commands); a config file overrides what it needs (the demo shortens epochs and raises the
learning rate for its tiny data).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PhaseConfig:
    """Optimisation of one training phase.

    ``lr_max = base_lr * sqrt(batch_size * world_size / 3)``; one-cycle schedule with a cosine
    warm-up over ``warmup_frac`` of the steps from ``lr_max / 1000``, then cosine decay to
    ``lr_max / final_factor``.
    """

    epochs: int
    base_lr: float
    batch_size: int = 32
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.01
    warmup_frac: float = 0.2
    warmup_div: float = 1000.0
    final_factor: float = 1e7
    patience: int | None = None  # early stopping on the validation metric (fine-tune)
    ema: bool = False  # evaluate with the EMA weights
    num_workers: int = 0
    max_steps_per_epoch: int | None = None  # cap (tests and quick looks); None = full epochs
    eval_batch_size: int | None = None
    feature_cache: int = 0  # probe: encode the train split this many times, reuse (0 = off)
    in_memory: bool = False  # keep decoded store samples in memory (small stores)

    def replace(self, **changes: Any) -> PhaseConfig:
        """Copy with overrides; unknown keys raise ``TypeError`` naming them."""
        fields = {f.name for f in dataclasses.fields(self)}
        bad = set(changes) - fields
        if bad:
            raise TypeError(f"unknown phase settings {sorted(bad)}; known: {sorted(fields)}")
        if "betas" in changes:
            changes["betas"] = tuple(changes["betas"])
        return dataclasses.replace(self, **changes)


#: Paper recipe per phase (IGNF/MAESTRO README: TreeSatAI-TS / PASTIS-HD intra-dataset runs).
PAPER_PHASES: dict[str, PhaseConfig] = {
    "pretrain": PhaseConfig(epochs=100, base_lr=3e-5, final_factor=1e7),
    "probe": PhaseConfig(epochs=10, base_lr=1e-5, final_factor=1e7),
    "finetune": PhaseConfig(epochs=50, base_lr=1e-5, final_factor=2.0, patience=5, ema=True),
}


def phase_config(phase: str, overrides: dict[str, Any] | None = None) -> PhaseConfig:
    """Paper defaults of ``phase`` ("pretrain", "probe", "finetune") with overrides."""
    if phase not in PAPER_PHASES:
        raise ValueError(f"unknown phase {phase!r}; known: {sorted(PAPER_PHASES)}")
    return PAPER_PHASES[phase].replace(**(overrides or {}))
