"""DINO-v2 as a baseline backbone (transformers' Dinov2Model, random weights, no network)."""

import pytest
import torch

from maestro.baselines.dinov2 import PATCH, Dinov2Backbone, load_dinov2, random_dinov2
from maestro.datasets import catalog


def _batch(ds, t=2, b=2):
    store = ds.store
    inputs, dates = {}, {}
    for m in ds.inputs:
        spec = store.modality(m)
        px = spec.pixels(store.crop_m)
        inputs[m] = torch.randn(b, t, len(spec.model_bands), px, px)
        dates[m] = torch.tensor([[[2020, 30 + 90 * k, 0] for k in range(t)]] * b)
    return {"inputs": inputs, "dates": dates, "ref_date": torch.tensor([[2020, 182, 0]] * b)}


@pytest.mark.parametrize("name", ["treesatai_ts", "pastis_hd", "flair2", "flair_hub"])
@pytest.mark.parametrize("fusion", ["shared", "monotemp"])
def test_forward_shapes_on_every_dataset(name, fusion):
    ds = catalog().dataset(name)
    bands = {m: ds.store.modality(m).model_bands for m in ds.inputs}
    grids = dict.fromkeys(ds.inputs, 2)
    net = Dinov2Backbone(random_dinov2("demo"), bands, grids, fusion=fusion)
    out = net.encode(_batch(ds))
    assert set(out) == set(ds.inputs)
    for m, f in out.items():
        assert f.shape == (2, 1, 2, 4, 64), m  # (B, G, T, L, D)
        assert torch.isfinite(f).all()
    n_encoders = 1 if fusion == "shared" else len(ds.inputs)
    assert len(net.models) == n_encoders


def test_patch_embeddings_start_from_the_pretrained_rgb_kernel():
    model = random_dinov2("demo", seed=1)
    rgb = model.embeddings.patch_embeddings.projection.weight
    net = Dinov2Backbone(model, {"aerial": ["R", "G", "B", "NIR"]}, {"aerial": 3})
    w = net.patch_embed["aerial"].weight
    assert w.shape == (64, 4, PATCH, PATCH) and torch.equal(w[:, :3], rgb)
    assert float(w[:, 3].detach().std()) < 0.02  # NIR: new, N(0, 0.01)


def test_a_checkpoint_in_the_library_layout_loads_and_a_damaged_one_fails(tmp_path):
    from safetensors.torch import load_file, save_file

    model = random_dinov2("demo", seed=3)
    model.save_pretrained(tmp_path / "ok")
    loaded = load_dinov2(tmp_path / "ok")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    model.save_pretrained(tmp_path / "bad")
    weights = tmp_path / "bad" / "model.safetensors"
    state = load_file(weights)
    state.pop(next(k for k in state if "layer.0" in k and k.endswith("weight")))
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="missing_keys"):
        load_dinov2(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        load_dinov2(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["treesatai_ts", "pastis_hd"])
def test_behind_the_downstream_interface_it_trains(name):
    """The baseline with MAESTRO's heads: logits of the task's shape, the frozen probe
    leaves the backbone unchanged, and a few fine-tuning steps lower the training loss."""
    import copy

    from maestro.baselines.model import BaselineModel
    from maestro.train.downstream import task_loss

    ds = catalog().dataset(name)
    bands = {m: ds.store.modality(m).model_bands for m in ds.inputs}
    grids = dict.fromkeys(ds.inputs, 2)
    torch.manual_seed(0)
    batch = _batch(ds)
    label_px = None
    if ds.task.kind == "multilabel":
        batch["label"] = (torch.rand(2, ds.task.num_classes) > 0.5).float()
    else:
        label_px = 8
        batch["label"] = torch.randint(0, ds.task.num_classes, (2, label_px, label_px))
    model = BaselineModel(
        Dinov2Backbone(random_dinov2("demo"), bands, grids), ds.task, dict.fromkeys(ds.inputs, 2),
        label_px=label_px, head="linear",
    )  # fmt: skip
    logits = model(batch, frozen=True)
    expected = (2, ds.task.num_classes) + ((label_px, label_px) if label_px else ())
    assert logits.shape == expected
    before = copy.deepcopy(model.encoder.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = task_loss(model(batch), batch["label"], ds.task.kind)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    after = model.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # fine-tuning moves it


def test_the_weights_manifest_names_the_checkpoint_and_its_licence():
    from pathlib import Path

    from maestro.data.download.manifest import load_manifest, manifest_dict

    path = Path(__file__).resolve().parents[2] / "config/manifests/weights/dinov2_base.yaml"
    m = load_manifest(path)
    (src,) = m.sources
    assert (src.repo, src.repo_type, src.licence) == ("facebook/dinov2-base", "model", "Apache-2.0")
    assert [f.path for f in src.files] == ["config.json", "model.safetensors"]
    assert m.unpinned() == [
        "facebook/dinov2-base: config.json", "facebook/dinov2-base: model.safetensors"
    ]  # fmt: skip
    assert manifest_dict(m)["sources"][0]["licence"] == "Apache-2.0"  # kept when re-pinned


def test_the_segmentation_head_uses_maestros_grid_whatever_the_patch_size():
    # DINO-v2's 14-px patches make a 5-token aerial grid on the demo's 64-px FLAIR-HUB label:
    # the head resamples to MAESTRO's aerial grid instead (decision B8; failed in a demo run)
    from maestro.baselines.build import build_baseline
    from maestro.baselines.spec import BaselineSpec
    from maestro.experiment import job_catalog

    aerial = {"patch_size": 8, "resolution_m": 1.6}
    dem = {"patch_size": 16, "resolution_m": 1.6}
    overrides = {"flair_hub": {"modalities": {"aerial": aerial, "dem": dem}}}
    ds = job_catalog({"overrides": overrides}).dataset("flair_hub")
    model = build_baseline(BaselineSpec("dinov2", "demo", "shared", head="concat"), ds)
    assert model.encoder.grids["aerial"] == 5
    assert model.head.ref_grid == 8 and model.head.upscale == 8
