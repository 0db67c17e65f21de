"""DINO-v2 sat.: the canopy-height checkpoint (Meta's DINO-v2 key layout, optionally
dynamically quantized) converted to transformers' Dinov2Model (random weights, no network)."""

import warnings

import pytest
import torch
from torch import nn

from maestro.baselines.build import build_baseline
from maestro.baselines.dinov2_sat import (
    dequantize,
    load_dinov2_sat,
    meta_to_hf,
    random_dinov2_sat,
    strip_prefix,
)
from maestro.baselines.spec import BaselineSpec
from maestro.datasets import catalog


def _meta_layout(hf_state):
    """The Meta DINO-v2 names of a transformers state dict (the published layout)."""
    out = {
        "cls_token": hf_state["embeddings.cls_token"],
        "pos_embed": hf_state["embeddings.position_embeddings"],
        "mask_token": hf_state["embeddings.mask_token"],
        "patch_embed.proj.weight": hf_state["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hf_state["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": hf_state["layernorm.weight"], "norm.bias": hf_state["layernorm.bias"],
    }  # fmt: skip
    layers = {int(k.split(".")[2]) for k in hf_state if k.startswith("encoder.layer.")}
    for i in layers:
        hf, meta = f"encoder.layer.{i}", f"blocks.{i}"
        for kind in ("weight", "bias"):
            out[f"{meta}.attn.qkv.{kind}"] = torch.cat(
                [hf_state[f"{hf}.attention.{p}_proj.{kind}"] for p in "qkv"]
            )
            out[f"{meta}.attn.proj.{kind}"] = hf_state[f"{hf}.attention.o_proj.{kind}"]
            for part in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
                out[f"{meta}.{part}.{kind}"] = hf_state[f"{hf}.{part}.{kind}"]
        out[f"{meta}.ls1.gamma"] = hf_state[f"{hf}.layer_scale1.lambda1"]
        out[f"{meta}.ls2.gamma"] = hf_state[f"{hf}.layer_scale2.lambda1"]
    return out


def test_a_checkpoint_in_the_published_layout_loads_exactly(tmp_path):
    reference = random_dinov2_sat("demo", seed=3)
    meta = _meta_layout(reference.state_dict())
    assert meta_to_hf(meta).keys() == reference.state_dict().keys()
    wrapped = {"state_dict": {f"chm_module_.backbone.{k}": v for k, v in meta.items()}}
    wrapped["state_dict"]["chm_module_.decode_head.conv.weight"] = torch.zeros(2, 2)
    torch.save(wrapped, tmp_path / "SSLlarge.pth")
    model = load_dinov2_sat(tmp_path / "SSLlarge.pth", "demo")
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert model.config.patch_size == 16 and model.config.image_size == 224


def test_dynamically_quantized_layers_are_dequantized():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = nn.Sequential(nn.Linear(8, 4), nn.LayerNorm(4))
        quantized = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
    state = quantized.state_dict()
    assert any(k.endswith("_packed_params._packed_params") for k in state)
    plain = dequantize(state)
    assert set(plain) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    assert plain["0.weight"].dtype == torch.float32 and not plain["0.weight"].is_quantized
    step = float(state["0._packed_params._packed_params"][0].q_scale())
    assert torch.allclose(plain["0.weight"], net[0].weight, atol=step)  # within one int8 step
    assert torch.equal(plain["0.bias"], net[0].bias.detach())


def test_damaged_checkpoints_name_the_file(tmp_path):
    meta = _meta_layout(random_dinov2_sat("demo").state_dict())
    with pytest.raises(ValueError, match=r"one '\*patch_embed\.proj\.weight' entry"):
        strip_prefix({"a.patch_embed.proj.weight": 0, "b.patch_embed.proj.weight": 0})
    bad = dict(meta)
    bad.pop("blocks.1.ls2.gamma")
    torch.save(bad, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing\.pth.*layer_scale2"):
        load_dinov2_sat(tmp_path / "missing.pth", "demo")
    torch.save(meta | {"blocks.0.attn.rope.freqs": torch.zeros(2)}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match=r"odd\.pth: not DINO-v2 backbone keys.*rope"):
        load_dinov2_sat(tmp_path / "odd.pth", "demo")
    torch.save(meta, tmp_path / "large.pth")
    with pytest.raises(ValueError, match=r"large\.pth: not a DINO-v2 sat\. \(large\)"):
        load_dinov2_sat(tmp_path / "large.pth", "large")


@pytest.mark.parametrize("name", ["treesatai_ts", "pastis_hd", "flair_hub", "flair2"])
def test_forward_shapes_on_every_dataset(name):
    ds = catalog().dataset(name)
    model = build_baseline(BaselineSpec("dinov2_sat", "demo", "shared", grid=2, head="linear"), ds)
    assert model.encoder.patch == 16
    batch = {"inputs": {}, "dates": {}, "ref_date": torch.tensor([[2020, 182, 0]] * 2)}
    for m in ds.inputs:
        spec = ds.store.modality(m)
        t = spec.num_dates if spec.temporal else 1
        px = spec.pixels(ds.store.crop_m)
        batch["inputs"][m] = torch.randn(2, t, len(spec.model_bands), px, px)
        batch["dates"][m] = torch.tensor([[[2020, 20 + 30 * k, 0] for k in range(t)]] * 2)
    feats = model.encoder.encode(batch)
    assert set(feats) == set(ds.inputs)
    assert all(f.shape[-2:] == (4, 64) and torch.isfinite(f).all() for f in feats.values())
    assert model(batch).shape[:2] == (2, ds.task.num_classes)
