"""Shared fixtures: seeding, the optional ../shared real-data samples."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (legacy global RNG some libraries still use)
    torch.manual_seed(0)


def shared_dir() -> Path | None:
    """The reference folder (``$MAESTRO_SHARED`` or ``<repo>/../shared``), if present."""
    cand = Path(os.environ.get("MAESTRO_SHARED", REPO.parent / "shared"))
    return cand if cand.is_dir() else None


@pytest.fixture
def realdata() -> Path:
    """``../shared/realdata``; tests that need it are skipped where it is absent."""
    base = shared_dir()
    if base is None or not (base / "realdata").is_dir():
        pytest.skip("../shared/realdata is not available on this machine")
    return base / "realdata"
