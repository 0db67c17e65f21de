"""Readers of the real raw distribution formats, one module per store."""

from __future__ import annotations

import importlib
from pathlib import Path

from maestro.data.sample import RawReader
from maestro.datasets.spec import StoreSpec


def get_reader(store: StoreSpec, root: str | Path) -> RawReader:
    """The reader of ``store``'s raw format over the distribution at ``root``."""
    module = importlib.import_module(f"maestro.data.readers.{store.name}")
    return module.Reader(store, Path(root))
