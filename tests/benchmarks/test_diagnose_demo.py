"""The demo diagnostics' arithmetic (benchmarks/diagnose_demo.py)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from maestro.model.target_norm import normalize_patches

PATH = Path(__file__).parents[2] / "benchmarks" / "diagnose_demo.py"


@pytest.fixture(scope="module")
def diagnose():
    spec = importlib.util.spec_from_file_location("diagnose_demo", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_target_shares_split_normalized_targets_exactly(diagnose):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 4, 4, generator=g)  # [B, T, L, P, C]
    z = normalize_patches(x, ((0, 1, 2, 3),))
    shares = diagnose.target_shares(z)
    assert sum(shares) == pytest.approx(1.0, abs=1e-6)
    assert all(0 < s < 1 for s in shares)
    # a pure band pattern (the same spectrum at every pixel of a token) is all "band"
    spectrum = torch.randn(4, 3, 5, 1, 4, generator=g).expand(-1, -1, -1, 4, -1)
    pure = normalize_patches(spectrum.contiguous(), ((0, 1, 2, 3),))
    assert diagnose.target_shares(pure) == pytest.approx((1.0, 0.0, 0.0), abs=1e-6)
    # a pure spatial pattern (every band alike) is all "spatial"
    field = torch.randn(4, 3, 5, 4, 1, generator=g).expand(-1, -1, -1, -1, 4)
    flat = normalize_patches(field.contiguous(), ((0, 1, 2, 3),))
    assert diagnose.target_shares(flat) == pytest.approx((0.0, 1.0, 0.0), abs=1e-6)
