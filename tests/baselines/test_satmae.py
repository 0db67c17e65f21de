"""SatMAE re-implemented in the published checkpoint's layout (random weights, no network)."""

import pytest
import torch

from maestro.baselines.adapt import NEW_CHANNEL_STD
from maestro.baselines.build import build_baseline
from maestro.baselines.satmae import SatMAE, SatMAEBackbone, date_codes, load_satmae
from maestro.baselines.spec import BaselineSpec
from maestro.datasets import catalog

#: Encoder parameters of the SatMAE temporal ViT-Base (checkpoint["model"]), name -> shape.
BASE_LAYOUT = {
    "cls_token": (1, 1, 768),
    "pos_embed": (1, 197, 384),
    "patch_embed.proj.weight": (768, 3, 16, 16),
    "patch_embed.proj.bias": (768,),
    "blocks.0.norm1.weight": (768,),
    "blocks.0.attn.qkv.weight": (2304, 768),
    "blocks.0.mlp.fc1.weight": (3072, 768),
    "blocks.11.mlp.fc2.weight": (768, 3072),
    "norm.weight": (768,),
    "norm.bias": (768,),
}
S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


def test_base_model_has_the_published_parameter_layout():
    state = SatMAE("base").state_dict()
    for name, shape in BASE_LAYOUT.items():
        assert tuple(state[name].shape) == shape, name
    assert len([k for k in state if k.startswith("blocks.")]) == 12 * 12
    assert len(state) == 12 * 12 + 6


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
    model = build_baseline(BaselineSpec("satmae", "demo", "mod", grid=2, head="linear"), ds)
    feats = model.encoder.encode(_batch(ds))
    assert list(feats) == ["s2"]  # Sentinel-2 only
    assert feats["s2"].shape == (2, 1, 3, 4, 448) and torch.isfinite(feats["s2"]).all()
    logits = model(_batch(ds))
    k = ds.task.num_classes
    assert logits.shape[:2] == (2, k)


def test_dates_change_the_tokens():
    torch.manual_seed(0)
    model = SatMAE("demo", in_chans=10).eval()
    x = torch.randn(1, 2, 10, 32, 32)
    a = model(x, torch.tensor([[[2019, 30, 0], [2019, 200, 0]]]))
    b = model(x, torch.tensor([[[2019, 200, 0], [2019, 30, 0]]]))
    assert a.shape == (1, 2, 4, 448) and not torch.allclose(a, b)
    codes = date_codes(torch.tensor([[2019, 30, 10]]))
    assert codes.shape == (1, 384)
    assert torch.allclose(codes[:, :64] ** 2 + codes[:, 64:128] ** 2, torch.ones(1, 64))


def _published(size="demo", seed=1):
    """A checkpoint in the published layout: RGB encoder + decoder, under "model"."""
    torch.manual_seed(seed)
    state = SatMAE(size, in_chans=3).state_dict()
    decoder = {"mask_token": torch.zeros(1, 1, 8), "decoder_embed.weight": torch.zeros(8, 448),
               "decoder_pred.bias": torch.zeros(768)}  # fmt: skip
    return state, {"model": state | decoder, "epoch": 799}


def test_checkpoint_loads_and_widens_the_rgb_kernel(tmp_path):
    state, ckpt = _published()
    torch.save(ckpt, tmp_path / "satmae.pth")
    gen = torch.Generator().manual_seed(0)
    model = load_satmae(tmp_path / "satmae.pth", S2_BANDS, "demo", gen)
    loaded = model.state_dict()
    kernel = loaded["patch_embed.proj.weight"]
    # by name: B4 <- R, B3 <- G, B2 <- B (docs/decisions.md B1); the 7 others N(0, 0.01)
    rgb = state["patch_embed.proj.weight"]
    for band, colour in (("B4", 0), ("B3", 1), ("B2", 2)):
        assert torch.equal(kernel[:, S2_BANDS.index(band)], rgb[:, colour])
    new = kernel[:, [S2_BANDS.index(b) for b in S2_BANDS if b not in ("B2", "B3", "B4")]]
    assert abs(float(new.std()) - NEW_CHANNEL_STD) < 0.002 and abs(float(new.mean())) < 0.001
    same = [k for k in state if k != "patch_embed.proj.weight"]
    assert all(torch.equal(state[k], loaded[k]) for k in same)


def test_damaged_checkpoints_name_the_file_and_the_tensor(tmp_path):
    state, ckpt = _published()
    bad = dict(ckpt["model"])
    bad.pop("blocks.1.attn.qkv.weight")
    torch.save({"model": bad}, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing\.pth.*blocks\.1\.attn\.qkv\.weight"):
        load_satmae(tmp_path / "missing.pth", S2_BANDS, "demo")
    torch.save({"model": state | {"cls_token": torch.zeros(1, 1, 32)}}, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"shape\.pth.*shapes \['cls_token"):
        load_satmae(tmp_path / "shape.pth", S2_BANDS, "demo")
    torch.save({"model": state | {"extra.weight": torch.zeros(1)}}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected \['extra\.weight'\]"):
        load_satmae(tmp_path / "extra.pth", S2_BANDS, "demo")


def test_only_sentinel2_is_read():
    with pytest.raises(ValueError, match="Sentinel-2 only"):
        SatMAEBackbone(SatMAE("demo"), {"s2": 2, "aerial": 2})
    with pytest.raises(ValueError, match="fusion 'shared' is not one of \\['mod'\\]"):
        BaselineSpec("satmae", "demo", "shared")


def test_a_missing_local_checkpoint_is_named(tmp_path):
    ds = catalog().dataset("treesatai_ts")
    spec = BaselineSpec("satmae", "demo", "mod", weights=str(tmp_path / "satmae_temporal_base"))
    with pytest.raises(FileNotFoundError, match=r"satmae_temporal_base: no such checkpoint"):
        build_baseline(spec, ds)
