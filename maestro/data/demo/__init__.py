"""The bundled demo suite: small raw datasets written in the real distribution formats.

``generate(store, root, cfg)`` writes one raw dataset under ``root`` exactly as the real
distribution lays it out (see :mod:`maestro.data.readers`), so the real readers and converters
run on it. Pixels come from :mod:`maestro.data.demo.world` (known, learnable structure).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from maestro.datasets.spec import StoreSpec


@dataclass(frozen=True)
class DemoConfig:
    """Size and content knobs of one demo dataset (all values come from the config file).

    Attributes:
        n_train, n_val, n_test: tiles per split.
        acquisitions: temporal modality -> raw acquisitions per year (before the model's
            temporal aggregation to ``num_dates``).
        cloudy_fraction: share of S2 acquisitions that carry clouds.
        parcels: Voronoi parcels (or forest stands) per tile.
        flair2_fraction: FLAIR-HUB only, share of patches also listed in the FLAIR#2 splits.
        seed: data seed (independent of training seeds).
    """

    n_train: int
    n_val: int
    n_test: int
    acquisitions: Mapping[str, int] = field(default_factory=dict)
    cloudy_fraction: float = 0.3
    parcels: int = 12
    flair2_fraction: float = 0.6
    seed: int = 0


def generate(store: StoreSpec, root: str | Path, cfg: DemoConfig) -> None:
    """Write the demo raw dataset of ``store`` under ``root`` (created; must not exist)."""
    module = importlib.import_module(f"maestro.data.demo.{store.name}")
    module.write(Path(root), store, cfg)
