"""The bundled demo suite: small raw datasets written in the real distribution formats.

``generate(store, root, cfg)`` writes one raw dataset under ``root`` exactly as the real
distribution lays it out (see :mod:`maestro.data.readers`), so the real readers and converters
run on it. Pixels come from :mod:`maestro.data.demo.world` (known, learnable structure).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
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


#: Written last in every demo root: what made it (``maestro generate-demo`` replaces only
#: a directory that has it).
DEMO_MARKER = ".maestro_demo.json"


def is_demo_root(path: str | Path) -> bool:
    """Whether ``path`` is a demo dataset that :func:`generate` wrote."""
    return (Path(path) / DEMO_MARKER).is_file()


def generate(store: StoreSpec, root: str | Path, cfg: DemoConfig) -> None:
    """Write the demo raw dataset of ``store`` under ``root`` (created; must not exist)."""
    module = importlib.import_module(f"maestro.data.demo.{store.name}")
    module.write(Path(root), store, cfg)
    record = {"store": store.name, "config": dataclasses.asdict(cfg)}
    (Path(root) / DEMO_MARKER).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
