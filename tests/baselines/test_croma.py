"""CROMA re-implemented in the published checkpoint's layout (random weights, no network)."""

import itertools
import math

import pytest
import torch

from maestro.baselines.build import build_baseline
from maestro.baselines.croma import (
    CROMA,
    CROMA_S2,
    alibi_2d,
    load_croma,
    nearest_dates,
    s2_channels,
)
from maestro.baselines.spec import BaselineSpec
from maestro.datasets import catalog

#: Parameters of CROMA_base.pt, part -> {name: shape} (layer 0 of each transformer).
BASE_LAYOUT = {
    "s1_encoder": {
        "linear_input.weight": (768, 8 * 8 * 2),
        "transformer.layers.0.0.to_qkv.weight": (2304, 768),
        "transformer.layers.0.0.to_out.bias": (768,),
        "transformer.layers.0.0.input_norm.weight": (768,),
        "transformer.layers.0.1.net.0.weight": (3072, 768),
        "transformer.layers.0.1.net.3.weight": (768, 3072),
        "transformer.layers.5.1.input_norm.bias": (768,),
        "transformer.norm_out.weight": (768,),
    },
    "s2_encoder": {
        "linear_input.weight": (768, 8 * 8 * 12),
        "transformer.layers.11.0.to_qkv.weight": (2304, 768),
    },
    "joint_encoder": {
        "layers.0.1.to_q.weight": (768, 768),
        "layers.0.1.to_k.weight": (768, 768),
        "layers.0.1.to_v.weight": (768, 768),
        "layers.5.2.net.3.bias": (768,),
        "norm_out.weight": (768,),
    },
    "s2_GAP_FFN": {"0.weight": (768,), "1.weight": (3072, 768), "3.weight": (768, 3072)},
}


def test_base_model_has_the_published_parameter_layout():
    model = CROMA("base")
    for part, layout in BASE_LAYOUT.items():
        state = getattr(model, part).state_dict()
        for name, shape in layout.items():
            assert tuple(state[name].shape) == shape, (part, name)
    assert len(model.s1_encoder.transformer.layers) == 6
    assert len(model.s2_encoder.transformer.layers) == 12
    assert len(model.joint_encoder.layers) == 6
    assert "to_qkv.bias" not in str(list(model.s1_encoder.state_dict()))  # no qkv bias


def test_alibi_bias_is_minus_slope_times_distance():
    bias = alibi_2d(3)
    assert bias.shape == (1, 16, 9, 9)
    points = list(itertools.product(range(3), range(3)))
    p, q = points.index((0, 0)), points.index((2, 1))
    for h in (0, 7, 15):
        slope = 2 ** (-0.5 * (h + 1))  # ALiBi's slopes for 16 heads
        assert math.isclose(float(bias[0, h, p, q]), -slope * math.sqrt(5), rel_tol=1e-6)
    assert torch.all(bias[0, :, range(9), range(9)] == 0)


def test_s2_channels_by_name_and_by_index():
    bands = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
    by_name = [bands[i] for i in s2_channels(bands)]
    assert by_name == ["B2", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B8A", "B11", "B12"]
    assert len(by_name) == len(CROMA_S2)
    assert s2_channels(bands, "index") == [*range(10), 9, 9]  # the official rule
    with pytest.raises(ValueError, match="needs S2 band B4"):
        s2_channels(("B2", "B3"))


def test_nearest_dates_pairs_each_s2_date_with_the_closest_s1_one():
    s2 = torch.tensor([[[2020, 10, 0], [2020, 200, 0], [2021, 2, 0]]])
    s1 = torch.tensor([[[2020, 190, 0], [2020, 360, 0], [2020, 20, 0]]])
    assert nearest_dates(s2, s1).tolist() == [[2, 0, 1]]


def _batch(ds, b=2):
    inputs, dates = {}, {}
    for m in ds.inputs:
        spec = ds.store.modality(m)
        t = spec.num_dates if spec.temporal else 1
        px = spec.pixels(ds.store.crop_m)
        inputs[m] = torch.randn(b, t, len(spec.model_bands), px, px)
        dates[m] = torch.tensor([[[2020, 15 + 360 * k // t, 0] for k in range(t)]] * b)
    return {"inputs": inputs, "dates": dates, "ref_date": torch.tensor([[2020, 182, 0]] * b)}


@pytest.mark.parametrize("name", ["treesatai_ts", "pastis_hd", "flair_hub", "flair2"])
@pytest.mark.parametrize("fusion", ["late", "inter"])
def test_forward_shapes_on_every_dataset(name, fusion):
    ds = catalog().dataset(name)
    torch.manual_seed(0)
    model = build_baseline(BaselineSpec("croma", "demo", fusion, grid=2, head="linear"), ds)
    batch = _batch(ds)
    feats = model.encoder.encode(batch)
    s1 = [m for m in ds.inputs if m.startswith("s1")]
    joint = ["joint"] if fusion == "inter" and s1 else []  # FLAIR#2 has no S1: S2 alone
    assert set(feats) == {*s1, "s2", *joint}
    t2 = ds.store.modality("s2").num_dates
    assert feats["s2"].shape == (2, 1, t2, 4, 64)
    if joint:
        assert feats["joint"].shape == (2, 1, t2, 4, 64)
    assert all(torch.isfinite(f).all() for f in feats.values())
    assert model(batch).shape[:2] == (2, ds.task.num_classes)


def test_checkpoints_load_and_damaged_ones_fail(tmp_path):
    torch.manual_seed(1)
    model = CROMA("demo")
    ckpt = {part: getattr(model, part).state_dict() for part in CROMA.PARTS}
    torch.save(ckpt, tmp_path / "CROMA_demo.pt")
    loaded = load_croma(tmp_path / "CROMA_demo.pt", "demo")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    torch.save({k: v for k, v in ckpt.items() if k != "joint_encoder"}, tmp_path / "part.pt")
    with pytest.raises(ValueError, match=r"part\.pt.*part 'joint_encoder' missing"):
        load_croma(tmp_path / "part.pt", "demo")
    bad = dict(ckpt["s2_encoder"])
    bad["linear_input.weight"] = torch.zeros(64, 8 * 8 * 10)  # 10 channels, not 12
    torch.save(ckpt | {"s2_encoder": bad}, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match=r"s2_encoder\.linear_input\.weight: \(64, 640\) vs"):
        load_croma(tmp_path / "shape.pt", "demo")
