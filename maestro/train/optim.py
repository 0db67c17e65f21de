"""AdamW, the learning-rate scaling rule and the one-cycle schedule (the IGNF/MAESTRO recipe)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def scaled_lr(base_lr: float, total_batch: int) -> float:
    """``lr_max = base_lr * sqrt(total_batch / 3)`` (upstream keeps the /3 "to stay consistent")."""
    return base_lr * math.sqrt(total_batch / 3.0)


def one_cycle(step: int, total: int, warmup_frac: float, div: float, final_factor: float) -> float:
    """LR multiplier of ``lr_max`` at ``step`` (0-based) of ``total`` optimizer steps.

    Cosine warm-up from ``1 / div`` to 1 over the first ``warmup_frac`` of the steps, then
    cosine decay from 1 to ``1 / final_factor`` (no momentum cycling).
    """
    warm = max(round(warmup_frac * total), 1)
    if step < warm:
        t = step / warm
        start = 1.0 / div
        return start + (1.0 - start) * (1 - math.cos(math.pi * t)) / 2
    t = min((step - warm) / max(total - warm, 1), 1.0)
    end = 1.0 / final_factor
    return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2


def param_groups(params: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Decay matrices and kernels only; no decay on norms, biases and 1-D parameters.

    Upstream decays every parameter; we follow the usual MAE/nanoGPT rule (docs/decisions.md).
    """
    decay, no_decay = [], []
    for _, p in params:
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module, lr: float, betas: tuple[float, float], weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model`` (the fused kernel: one pass per step)."""
    return torch.optim.AdamW(
        param_groups(model.named_parameters(), weight_decay), lr=lr, betas=betas, fused=True
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_frac: float,
    div: float,
    final_factor: float,
) -> torch.optim.lr_scheduler.LambdaLR:
    """The one-cycle schedule as a LambdaLR stepped once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: one_cycle(s, total_steps, warmup_frac, div, final_factor)
    )
