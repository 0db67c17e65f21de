"""Small Zarr stores (from the fake reader) and tiny model settings for training-loop tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro.store.convert import convert
from tests.data.fakes import SMALL, FakeReader, small_catalog, small_store

#: A very small model: the loops, not the capacity, are under test.
TINY_MODEL = {
    "size": "tiny", "embed_dim": 24, "depth": 2, "inter_depth": 1, "heads": 2, "dim_head": 8,
    "mlp_dim": 24, "decoder_dim": 16, "decoder_heads": 2, "decoder_dim_head": 8, "head_heads": 2,
}  # fmt: skip
CELL = {
    "fusion": "group", "inter": "1", "spectral": "joint", "norm": "patchgroup", "groups": "spec",
    "size": "tiny", "length": "1",
}  # fmt: skip


def job(phase: dict | None = None) -> dict:
    """A job configuration as the workflow would pass it."""
    return {"overrides": SMALL, "model": TINY_MODEL, "cell": CELL, "phase": phase or {}}


@pytest.fixture(scope="session")
def small_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_stores")
    out = {}
    for name in ("treesatai_ts", "pastis_hd"):
        out[name] = root / f"{name}.zarr"
        convert(FakeReader(small_store(name), 8, 4, 4, seed=3, tlim=(2, 6)), out[name], 4)
    return out


@pytest.fixture(scope="session")
def catalog_small():
    return small_catalog()
