"""Dataset and modality declarations (data only; imports nothing else from maestro)."""

from __future__ import annotations

from typing import Any

from maestro.datasets import flair_hub, pastis_hd, s2_naip, treesatai_ts
from maestro.datasets.spec import (
    SPLITS,
    Catalog,
    DatasetSpec,
    LabelSpec,
    ModalitySpec,
    Scaling,
    StoreSpec,
    TaskSpec,
    apply_overrides,
)

_MODULES = {
    "treesatai_ts": treesatai_ts,
    "pastis_hd": pastis_hd,
    "flair_hub": flair_hub,
    "s2_naip": s2_naip,
}

#: Store names, in table order.
STORE_NAMES = tuple(_MODULES)


def catalog(overrides: dict[str, Any] | None = None) -> Catalog:
    """Every store and dataset, with per-store config overrides applied.

    Args:
        overrides: ``{store_name: {"tile_m": ..., "modalities": {mod: {...}}}}``.
    """
    overrides = overrides or {}
    unknown = set(overrides) - set(_MODULES)
    if unknown:
        raise ValueError(f"overrides for unknown stores {sorted(unknown)}; known: {STORE_NAMES}")
    cat = Catalog()
    for name, module in _MODULES.items():
        store = apply_overrides(module.STORE, overrides.get(name))
        cat.stores[name] = store
        for ds in module.datasets(store):
            cat.datasets[ds.name] = ds
    return cat


__all__ = [
    "SPLITS",
    "STORE_NAMES",
    "Catalog",
    "DatasetSpec",
    "LabelSpec",
    "ModalitySpec",
    "Scaling",
    "StoreSpec",
    "TaskSpec",
    "apply_overrides",
    "catalog",
]
