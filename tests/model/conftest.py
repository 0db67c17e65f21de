"""Small model configs and synthetic batches shaped like each dataset's demo inputs."""

from __future__ import annotations

import pytest
import torch

from maestro.datasets import catalog
from maestro.model import build_config

#: The demo geometry of config/config.yaml, smaller still where it only costs time.
DEMO_OVERRIDES = {
    "treesatai_ts": {
        "modalities": {
            "aerial": {"patch_size": 60},
            "s2": {"num_dates": 3},
            "s1_asc": {"num_dates": 2},
            "s1_des": {"num_dates": 2},
        }
    },
    "pastis_hd": {
        "tile_m": 320,
        "modalities": {
            "spot": {"patch_size": 32},
            "s2": {"patch_size": 4, "num_dates": 3},
            "s1_asc": {"patch_size": 4, "num_dates": 2},
            "s1_des": {"patch_size": 4, "num_dates": 2},
        },
    },
    "s2_naip": {
        "modalities": {
            "aerial": {"resolution_m": 5.0, "image_size": 96},  # 24 px crops, x4 -> 6 x 6 tokens
            "spot": {"resolution_m": 5.0, "image_size": 32},
            "s2": {"num_dates": 3},
            "s1": {"num_dates": 2},
        }
    },
    "flair_hub": {
        "modalities": {
            "aerial": {"resolution_m": 0.8},
            "dem": {"resolution_m": 0.8},
            "s2": {"patch_size": 5, "num_dates": 3},
            "s1_asc": {"patch_size": 5, "num_dates": 2},
            "s1_des": {"patch_size": 5, "num_dates": 2},
        }
    },
}

SMALL = dict(
    embed_dim=32, depth=3, heads=2, dim_head=16, mlp_dim=32,
    decoder_dim=24, decoder_depth=1, decoder_heads=2, decoder_dim_head=12, head_heads=4,
)  # fmt: skip


def small_config(**changes):
    """A tiny-width config; inter_depth defaults to 0 unless given."""
    return build_config("tiny", **{**SMALL, "inter_depth": 0, **changes})


def make_batch(dataset, batch=2, seed=0):
    """Random inputs, increasing dates and a reference date for a DatasetSpec."""
    g = torch.Generator().manual_seed(seed)
    inputs, dates = {}, {}
    for m in dataset.modalities:
        px = m.input_px(dataset.store.crop_m)
        inputs[m.name] = torch.randn(batch, m.num_dates, m.channels, px, px, generator=g)
        days = torch.linspace(20, 340, m.num_dates).round().long()
        d = torch.stack([torch.full_like(days, 2021), days, torch.zeros_like(days)], -1)
        dates[m.name] = d.expand(batch, -1, -1).clone()
    return {"inputs": inputs, "dates": dates, "ref_date": torch.tensor([[2021, 182, 0]] * batch)}


@pytest.fixture(scope="session")
def demo_catalog():
    return catalog(DEMO_OVERRIDES)
