"""The masked autoencoder: every variant trains a step; fusion modes route information."""

import itertools

import pytest
import torch

from maestro.model import MAESTRO, DownstreamModel, build_config

from .conftest import make_batch, small_config

DATASETS = ["treesatai_ts", "pastis_hd", "flair_hub", "flair2"]
VARIANTS = [
    (fusion, inter, spectral, norm)
    for fusion, spectral, norm in itertools.product(
        ["shared", "monotemp", "mod", "group"], ["joint", "token"], ["none", "patch", "patch_group"]
    )
    for inter in ([0, 3] if fusion in ("mod", "group") else [0])  # 3 = MAESTRO's inter-group
]


def _model(ds, **cfg):
    return MAESTRO(small_config(**cfg), ds.modalities, ds.store.crop_m, ds.store.grid_pos_enc)


def _tiny(ds, **cfg):
    """The paper's tiny preset (192 wide, 12 blocks) with a variant's settings."""
    return MAESTRO(
        build_config("tiny", **cfg), ds.modalities, ds.store.crop_m, ds.store.grid_pos_enc
    )


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize(("fusion", "inter", "spectral", "norm"), VARIANTS)
def test_every_variant_trains_one_step(demo_catalog, dataset, fusion, inter, spectral, norm):
    ds = demo_catalog.dataset(dataset)
    torch.manual_seed(0)
    model = _tiny(ds, fusion=fusion, inter_depth=inter, spectral=spectral, target_norm=norm)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = make_batch(ds)
    out = model(batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("encoders.") for k in changed)
    assert any(k.startswith("decoders.") for k in changed)
    for m, spec in ((m.name, m) for m in ds.modalities):
        px = spec.pixels(ds.store.crop_m)
        assert out.preds[m].shape == (2, spec.num_dates, spec.channels, px, px)
        groups = len(spec.norm_groups) if spectral == "token" else 1
        grid = spec.grid(ds.store.crop_m)
        assert out.masks[m].shape == (2, groups, spec.num_dates, grid * grid)


def test_mask_ratio_per_sequence(demo_catalog):
    ds = demo_catalog.dataset("treesatai_ts")
    model = _model(ds, fusion="group", inter_depth=1)
    out = model(make_batch(ds, batch=3))
    n_s1 = out.masks["s1_asc"][0].numel() + out.masks["s1_des"][0].numel()
    masked_s1 = out.masks["s1_asc"].flatten(1).sum(1) + out.masks["s1_des"].flatten(1).sum(1)
    assert torch.all(masked_s1 == round(0.75 * n_s1))  # exact count per group sequence
    assert torch.all(out.masks["s2"].flatten(1).sum(1) == round(0.75 * out.masks["s2"][0].numel()))


def _features_change(model, ds, changed_mod):
    """Which modalities' encoder features change when the input of ``changed_mod`` changes."""
    model.eval()
    a = make_batch(ds, seed=1)
    b = {**a, "inputs": dict(a["inputs"])}
    b["inputs"][changed_mod] = a["inputs"][changed_mod] + 1.0
    fa, fb = model.encode(a), model.encode(b)
    return {m for m in fa if not torch.allclose(fa[m], fb[m], atol=1e-6)}


def test_fusion_modes_route_information(demo_catalog):
    ds = demo_catalog.dataset("treesatai_ts")
    torch.manual_seed(0)
    s1 = {"s1_asc", "s1_des"}
    assert _features_change(_model(ds, fusion="group", inter_depth=0), ds, "s1_asc") == s1
    assert _features_change(_model(ds, fusion="mod", inter_depth=0), ds, "s1_asc") == {"s1_asc"}
    everyone = {m.name for m in ds.modalities}
    assert _features_change(_model(ds, fusion="group", inter_depth=1), ds, "s1_asc") == everyone
    assert _features_change(_model(ds, fusion="shared"), ds, "aerial") == {"aerial"}


def test_per_image_fusion_keeps_dates_apart(demo_catalog):
    ds = demo_catalog.dataset("treesatai_ts")
    for fusion, expect_other_dates in (("monotemp", False), ("mod", True)):
        model = _model(ds, fusion=fusion).eval()
        a = make_batch(ds, seed=2)
        b = {**a, "inputs": dict(a["inputs"])}
        b["inputs"]["s2"] = a["inputs"]["s2"].clone()
        b["inputs"]["s2"][:, 0] += 1.0  # change date 0 only
        fa, fb = model.encode(a)["s2"], model.encode(b)["s2"]
        other_dates_changed = not torch.allclose(fa[:, :, 1:], fb[:, :, 1:], atol=1e-6)
        assert other_dates_changed == expect_other_dates, fusion


def test_dates_enter_the_tokens_unless_disabled(demo_catalog):
    ds = demo_catalog.dataset("treesatai_ts")
    for use, expect in ((True, True), (False, False)):
        torch.manual_seed(0)
        model = _model(ds, use_date_enc=use).eval()
        a = make_batch(ds)
        b = {**a, "dates": {k: v.clone() for k, v in a["dates"].items()}}
        b["dates"]["s2"][..., 1] += 30
        changed = not torch.allclose(model.encode(a)["s2"], model.encode(b)["s2"])
        assert changed == expect


def test_downstream_heads_shapes(demo_catalog):
    cases = (
        ("treesatai_ts", (2, 15)),
        ("pastis_hd", (2, 19, 16, 16)),
        ("flair2", (2, 15, 128, 128)),
    )
    for name, shape in cases:
        ds = demo_catalog.dataset(name)
        mae = _model(ds, fusion="group", inter_depth=1)
        label_px = None
        if ds.task.kind == "segmentation":
            label_px = ds.store.modality(ds.store.label.grid_modality).pixels(ds.store.crop_m)
        model = DownstreamModel(mae, ds.task, label_px)
        assert model.encoder.decoders is None
        logits = model(make_batch(ds))
        assert logits.shape == shape
        with torch.no_grad():
            assert model(make_batch(ds), frozen=True).shape == shape


def test_same_seed_same_loss(demo_catalog):
    ds = demo_catalog.dataset("pastis_hd")
    losses = []
    for _ in range(2):
        torch.manual_seed(5)
        model = _model(ds, fusion="group", inter_depth=1)
        losses.append(model(make_batch(ds)).loss.item())
    assert losses[0] == losses[1]


def test_analysis_groups_replace_declared_ones(demo_catalog):
    ds = demo_catalog.dataset("treesatai_ts")
    groups = {"s2": (("B2", "B3", "B4"), ("B5", "B6", "B7", "B8", "B8A"), ("B11", "B12"))}
    model = MAESTRO(small_config(), ds.modalities, ds.store.crop_m, ds.store.grid_pos_enc, groups)
    assert model.plans["s2"].norm_groups == ((0, 1, 2), (3, 4, 5, 6, 7), (8, 9))
    with pytest.raises(ValueError, match="partition"):
        bad = {"s2": (("B2",),)}
        MAESTRO(small_config(), ds.modalities, ds.store.crop_m, ds.store.grid_pos_enc, bad)


def test_modalities_share_a_tokenizer_by_key(demo_catalog):
    from maestro.datasets import catalog

    from .conftest import DEMO_OVERRIDES

    shared = {k: v for k, v in DEMO_OVERRIDES["treesatai_ts"]["modalities"].items()}
    for orbit in ("s1_asc", "s1_des"):
        shared[orbit] = {**shared[orbit], "embed_key": "s1"}
    ds = catalog({"treesatai_ts": {"modalities": shared}}).dataset("treesatai_ts")
    model = _model(ds)
    assert sorted(model.patchify) == ["aerial", "s1", "s2"]
    assert sorted(model.pixelify) == ["aerial", "s1", "s2"]
    out = model(make_batch(ds))
    out.loss.backward()
    assert model.patchify["s1"].proj[0].weight.grad is not None
    separate = _model(demo_catalog.dataset("treesatai_ts"))
    n_shared = sum(p.numel() for p in model.patchify.parameters())
    n_separate = sum(p.numel() for p in separate.patchify.parameters())
    assert n_separate - n_shared == sum(p.numel() for p in separate.patchify["s1_des"].parameters())


def test_compile_switch_compiles_blocks_in_place(demo_catalog):
    from maestro.model.layers import Transformer

    model = _model(demo_catalog.dataset("pastis_hd"), fusion="group", inter_depth=1)
    keys = list(model.state_dict())
    model.compile_blocks()  # lazy: nothing is compiled until the first call
    blocks = [m for m in model.modules() if isinstance(m, Transformer)]
    assert blocks and all(m._compiled_call_impl is not None for m in blocks)
    assert list(model.state_dict()) == keys  # checkpoints are unaffected


def test_pretraining_only_dataset_with_derived_and_resized_inputs(demo_catalog):
    ds = demo_catalog.dataset("s2_naip")
    model = _model(ds, fusion="group", inter_depth=1)
    assert {m: p.grid for m, p in model.plans.items()} == {"aerial": 6, "spot": 2, "s2": 6, "s1": 6}
    out = model(make_batch(ds))
    assert out.preds["aerial"].shape == (2, 1, 4, 96, 96) and out.preds["spot"].shape == (
        2,
        1,
        3,
        32,
        32,
    )
    assert torch.isfinite(out.loss)
