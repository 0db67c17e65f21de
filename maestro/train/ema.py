"""Exponential moving average of model weights (IGNF/MAESTRO ``use_ema``; docs/decisions.md T3)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_momentum(epochs: int) -> float:
    """Per-epoch momentum ``m = 1 - 1 / (0.2 * epochs)`` (0.95 for 100 epochs), floored at 0."""
    return max(0.0, 1.0 - 1.0 / (0.2 * epochs)) if epochs > 0 else 0.0


class EMA:
    """A frozen copy updated as ``theta_ema <- m * theta_ema + (1 - m) * theta`` each epoch."""

    def __init__(self, model: nn.Module, momentum: float) -> None:
        self.momentum = momentum
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current weights into the average (buffers are copied)."""
        for e, p in zip(self.model.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - self.momentum)
        for e, b in zip(self.model.buffers(), model.buffers(), strict=True):
            e.copy_(b)

    def state_dict(self) -> dict:
        """Weights of the average."""
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore the average."""
        self.model.load_state_dict(state)
