"""Frozen-encoder features computed once and reused by the probe's epochs.

A probe trains only the head on features of a frozen encoder; the encoder's output for a
given input is therefore the same at every epoch, and recomputing it is the probe's whole
cost. With ``feature_cache: V`` (a phase setting) the train split is encoded ``V`` times, each
time with the random crops, dates and flips of one epoch (``set_epoch(v)``), and epoch ``e``
trains the head on view ``e % V``; the val split is encoded once. ``V`` equal to the epoch
count is exactly the uncached probe; a smaller ``V`` reuses augmentations (docs/decisions.md).

Features stay on the CPU (``{modality: (N, G, T, L, D)}`` per view), so the cache is meant
for small runs (the demo); paper-size runs leave it off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from maestro.data.torch_dataset import MaestroDataset
from maestro.model.mae import MAESTRO
from maestro.train.runtime import Runtime, to_device


@dataclass
class CachedSplit:
    """Encoded items of one pass over a split: features ``{m: (N, G, T, L, D)}``, labels."""

    feats: dict[str, torch.Tensor]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor, device: torch.device) -> tuple[dict, torch.Tensor]:
        """Items ``idx`` on ``device``."""
        feats = {m: f[idx].to(device) for m, f in self.feats.items()}
        return feats, self.labels[idx].to(device)


@torch.no_grad()
def encode_split(encoder: MAESTRO, ds: MaestroDataset, batch: int, runtime: Runtime) -> CachedSplit:
    """Encode every item of ``ds`` once, in order (its current epoch's augmentation)."""
    encoder.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    labels = []
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False)
    for b in loader:
        b = to_device(b, runtime.device)
        with runtime.autocast():
            feats = encoder.encode(b)
        for m, f in feats.items():
            parts.setdefault(m, []).append(f.float().cpu())
        labels.append(b["label"].cpu())
    return CachedSplit({m: torch.cat(v) for m, v in parts.items()}, torch.cat(labels))


class FeatureCache:
    """``views`` encoded passes over the train split (see the module docstring)."""

    def __init__(
        self, encoder: MAESTRO, ds: MaestroDataset, views: int, batch: int, runtime: Runtime
    ) -> None:
        if views < 1:
            raise ValueError(f"feature_cache needs >= 1 view, got {views}")
        self.views = []
        for v in range(views):
            ds.set_epoch(v)
            self.views.append(encode_split(encoder, ds, batch, runtime))

    def batches(
        self, epoch: int, batch: int, generator_seed: int, device: torch.device
    ) -> Iterator[tuple[dict, torch.Tensor]]:
        """Shuffled drop-last batches of the view of ``epoch``."""
        view = self.views[epoch % len(self.views)]
        # the batches a shuffling, drop-last DataLoader with this generator seed would draw
        order = torch.utils.data.DataLoader(
            range(len(view)), batch_size=batch, shuffle=True, drop_last=True,
            generator=torch.Generator().manual_seed(generator_seed),
        )  # fmt: skip
        for idx in order:
            yield view.batch(idx, device)
