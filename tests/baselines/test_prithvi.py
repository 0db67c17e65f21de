"""Prithvi-EO-2.0 re-implemented in terratorch's parameter layout (random weights, no network)."""

import pytest
import torch

from maestro.baselines.adapt import NEW_CHANNEL_STD
from maestro.baselines.build import build_baseline
from maestro.baselines.prithvi import HLS_BANDS, Prithvi, load_prithvi, temporal_coords
from maestro.baselines.spec import BaselineSpec
from maestro.baselines.vit import sincos_3d
from maestro.datasets import catalog

#: Encoder parameters of Prithvi-EO-2.0-300M-TL (the MAE's encoder.*), name -> shape.
LAYOUT_300 = {
    "patch_embed.proj.weight": (1024, 6, 1, 16, 16),
    "patch_embed.proj.bias": (1024,),
    "cls_token": (1, 1, 1024),
    "temporal_embed_enc.scale": (1,),
    "location_embed_enc.scale": (1,),
    "blocks.0.norm1.weight": (1024,),
    "blocks.0.attn.qkv.weight": (3072, 1024),
    "blocks.23.mlp.fc2.weight": (1024, 4096),
    "norm.weight": (1024,),
}
S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


def test_300m_model_has_the_published_parameter_layout():
    state = Prithvi("300").state_dict()
    for name, shape in LAYOUT_300.items():
        assert tuple(state[name].shape) == shape, name
    assert len([k for k in state if k.startswith("blocks.")]) == 24 * 12
    assert Prithvi("300").norm.eps == 1e-5  # nn.LayerNorm's default, as terratorch builds it


def test_position_code_is_the_3d_sincos_resized_with_aligned_corners():
    model = Prithvi("demo")
    assert torch.allclose(model.pos_embed(3, 14), sincos_3d(64, 3, 14))
    small = model.pos_embed(3, 2).reshape(3, 4, 64)
    full = sincos_3d(64, 3, 14).reshape(3, 196, 64)
    assert torch.allclose(small[:, 0], full[:, 0], atol=1e-5)  # top-left corner kept
    assert torch.allclose(small[:, 3], full[:, 195], atol=1e-5)  # bottom-right corner kept


def _batch(ds, t=3, b=2):
    spec = ds.store.modality("s2")
    px = spec.pixels(ds.store.crop_m)
    dates = torch.tensor([[[2020, 30 + 90 * k, 0] for k in range(t)]] * b)
    return {
        "inputs": {"s2": torch.randn(b, t, len(spec.model_bands), px, px)},
        "dates": {"s2": dates},
        "ref_date": torch.tensor([[2020, 182, 0]] * b),
    }


@pytest.mark.parametrize("name", ["treesatai_ts", "pastis_hd", "flair_hub", "flair2"])
def test_forward_shapes_on_every_dataset(name):
    ds = catalog().dataset(name)
    model = build_baseline(BaselineSpec("prithvi", "demo", "mod", grid=2, head="linear"), ds)
    feats = model.encoder.encode(_batch(ds))
    assert list(feats) == ["s2"]
    assert feats["s2"].shape == (2, 1, 3, 4, 64) and torch.isfinite(feats["s2"]).all()
    assert model(_batch(ds)).shape[:2] == (2, ds.task.num_classes)


def test_temporal_coordinates_and_their_effect():
    coords = temporal_coords(torch.tensor([[[2020, 73, 0]]]))
    assert torch.allclose(coords, torch.tensor([[[2020.0, 73 / 365.25]]]))
    torch.manual_seed(0)
    model = Prithvi("demo", in_chans=10).eval()
    x = torch.randn(1, 10, 2, 32, 32)
    a = model(x, torch.tensor([[[2019.0, 0.1], [2019.0, 0.6]]]))
    b = model(x, torch.tensor([[[2019.0, 0.6], [2019.0, 0.1]]]))
    assert a.shape == (1, 2, 4, 64) and not torch.allclose(a, b)


def test_checkpoint_in_the_mae_layout_loads(tmp_path):
    torch.manual_seed(1)
    encoder = Prithvi("demo", in_chans=6).state_dict()
    mae = {f"encoder.{k}": v for k, v in encoder.items()}
    mae |= {"encoder.pos_embed": torch.zeros(1, 1 + 4 * 196, 64),  # fixed: regenerated
            "decoder.mask_token": torch.zeros(1, 1, 32),
            "decoder.decoder_pred.weight": torch.zeros(1536, 32)}  # fmt: skip
    torch.save(mae, tmp_path / "Prithvi_EO_V2_300M_TL.pt")
    gen = torch.Generator().manual_seed(0)
    model = load_prithvi(tmp_path / "Prithvi_EO_V2_300M_TL.pt", S2_BANDS, "demo", gen)
    loaded = model.state_dict()
    kernel, hls = loaded["patch_embed.proj.weight"], encoder["patch_embed.proj.weight"]
    for i, band in enumerate(HLS_BANDS.values()):  # B2 B3 B4 B8A B11 B12 <- HLS kernels
        assert torch.equal(kernel[:, S2_BANDS.index(band)], hls[:, i])
    new = kernel[:, [S2_BANDS.index(b) for b in ("B5", "B6", "B7", "B8")]]
    assert abs(float(new.std()) - NEW_CHANNEL_STD) < 0.002
    assert all(
        torch.equal(encoder[k], loaded[k]) for k in encoder if k != "patch_embed.proj.weight"
    )


def test_damaged_checkpoints_name_the_file_and_the_tensor(tmp_path):
    state = Prithvi("demo", in_chans=6).state_dict()
    bad = dict(state)
    bad.pop("temporal_embed_enc.scale")
    torch.save(bad, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"missing\.pt.*temporal_embed_enc\.scale"):
        load_prithvi(tmp_path / "missing.pt", S2_BANDS, "demo")
    torch.save(state | {"norm.weight": torch.zeros(8)}, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match=r"shapes \['norm\.weight: \(8,\) vs \(64,\)"):
        load_prithvi(tmp_path / "shape.pt", S2_BANDS, "demo")
