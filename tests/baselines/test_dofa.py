"""DOFA re-implemented in the published checkpoint's layout (random weights, no network)."""

import pytest
import torch

from maestro.baselines.dofa import (
    DOFA,
    SAR_CODE,
    DOFABackbone,
    band_wavelengths,
    load_dofa,
    wavelength_codes,
)
from maestro.datasets import catalog

#: Parameters of dofa_base_patch16_224 (DOFA-Net / torchgeo), name -> shape; blocks.0 stands
#: for each of the 12 blocks.
BASE_LAYOUT = {
    "cls_token": (1, 1, 768),
    "pos_embed": (1, 197, 768),
    "patch_embed.fclayer.w1.weight": (128, 128),
    "patch_embed.fclayer.w2.bias": (128,),
    "patch_embed.weight_generator.weight_tokens": (128, 128),
    "patch_embed.weight_generator.bias_token": (1, 128),
    "patch_embed.weight_generator.fc_weight.weight": (16 * 16 * 768, 128),
    "patch_embed.weight_generator.fc_bias.weight": (768, 128),
    "patch_embed.weight_generator.transformer_encoder.layers.0.self_attn.in_proj_weight": (
        384, 128,
    ),
    "patch_embed.weight_generator.transformer_encoder.layers.0.linear1.weight": (2048, 128),
    "patch_embed.weight_generator.transformer_encoder.layers.0.norm2.bias": (128,),
    "blocks.0.norm1.weight": (768,),
    "blocks.0.attn.qkv.weight": (2304, 768),
    "blocks.0.attn.qkv.bias": (2304,),
    "blocks.0.attn.proj.weight": (768, 768),
    "blocks.0.mlp.fc1.weight": (3072, 768),
    "blocks.0.mlp.fc2.weight": (768, 3072),
    "fc_norm.weight": (768,),
}  # fmt: skip


def test_base_model_has_the_published_parameter_layout():
    state = DOFA("base").state_dict()
    for name, shape in BASE_LAYOUT.items():
        assert tuple(state[name].shape) == shape, name
    assert sum(k.startswith("blocks.") for k in state) == 12 * 12  # 12 tensors per block
    assert len([k for k in state if k.startswith("blocks.11.")]) == 12


def test_wavelengths_come_from_the_declarations():
    s2 = catalog().store("flair_hub").modality("aerial")  # file order R, G, B, NIR
    assert band_wavelengths(s2.model_bands, s2.bands, s2.wavelengths_um) == [0.81, 0.64, 0.56, 0.48]
    s1 = catalog().store("flair_hub").modality("s1_asc")
    assert band_wavelengths(s1.model_bands, s1.bands, s1.wavelengths_um) == [SAR_CODE] * 2
    dem = catalog().store("flair_hub").modality("dem")
    with pytest.raises(ValueError, match="'DSM' has no wavelength"):
        band_wavelengths(dem.model_bands, dem.bands, dem.wavelengths_um)
    codes = wavelength_codes(torch.tensor([0.49, 0.56]))
    assert codes.shape == (2, 128) and torch.allclose(codes[:, :64] ** 2 + codes[:, 64:] ** 2,
                                                       torch.ones(2, 64))  # fmt: skip


def _batch(ds, mods, t=2, b=2):
    inputs, dates = {}, {}
    for m in mods:
        spec = ds.store.modality(m)
        px = spec.pixels(ds.store.crop_m)
        inputs[m] = torch.randn(b, t, len(spec.model_bands), px, px)
        dates[m] = torch.tensor([[[2020, 30 + 90 * k, 0] for k in range(t)]] * b)
    return {"inputs": inputs, "dates": dates, "ref_date": torch.tensor([[2020, 182, 0]] * b)}


@pytest.mark.parametrize("name", ["treesatai_ts", "pastis_hd", "flair_hub", "flair2"])
@pytest.mark.parametrize("fusion", ["shared", "monotemp"])
def test_forward_shapes_on_every_dataset(name, fusion):
    ds = catalog().dataset(name)
    mods = [m for m in ds.inputs if m != "dem"]  # no wavelength: not a DOFA input
    specs = {m: ds.store.modality(m) for m in mods}
    waves = {
        m: band_wavelengths(s.model_bands, s.bands, s.wavelengths_um) for m, s in specs.items()
    }
    torch.manual_seed(0)
    net = DOFABackbone(DOFA("demo"), waves, dict.fromkeys(mods, 3), fusion=fusion)
    out = net.encode(_batch(ds, mods))
    assert set(out) == set(mods)
    assert all(f.shape == (2, 1, 2, 9, 64) and torch.isfinite(f).all() for f in out.values())


def test_the_kernel_depends_on_the_wavelengths():
    torch.manual_seed(0)
    model = DOFA("demo").eval()
    x = torch.randn(1, 3, 48, 48)
    a = model(x, torch.tensor([0.49, 0.56, 0.665]))
    b = model(x, torch.tensor([0.842, 1.61, 2.19]))
    assert a.shape == (1, 9, 64) and not torch.allclose(a, b)


def test_checkpoints_load_and_damaged_ones_fail(tmp_path):
    torch.manual_seed(1)
    model = DOFA("demo")
    state = model.state_dict() | {"head.weight": torch.zeros(45, 64)}  # a classifier: ignored
    torch.save(state, tmp_path / "ok.pth")
    loaded = load_dofa(tmp_path / "ok.pth", "demo")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    torch.save({"model": state}, tmp_path / "wrapped.pth")  # the {"model": ...} form
    assert torch.equal(load_dofa(tmp_path / "wrapped.pth", "demo").cls_token, model.cls_token)
    bad = dict(state)
    bad.pop("blocks.1.attn.qkv.weight")
    torch.save(bad, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing\.pth.*blocks\.1\.attn\.qkv\.weight"):
        load_dofa(tmp_path / "missing.pth", "demo")
    with pytest.raises(ValueError, match=r"shapes \['cls_token"):
        torch.save(state | {"cls_token": torch.zeros(1, 1, 32)}, tmp_path / "shape.pth")
        load_dofa(tmp_path / "shape.pth", "demo")
