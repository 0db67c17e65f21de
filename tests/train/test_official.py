"""Importing released IGNF/MAESTRO checkpoints (no real file: checkpoints built in the
official layout, from its published name/shape table when ../shared has it, and by the
inverse mapping of our own model)."""

from __future__ import annotations

import ast
import json
import re

import pytest
import torch
from einops import rearrange

from maestro.cli import main
from maestro.experiment import job_catalog, model_config
from maestro.train.build import build_mae, load_mae
from maestro.train.official import import_checkpoint, our_name, pixel_rows
from tests.conftest import shared_dir
from tests.train.conftest import job

#: Datasets of the published table (its section names) and our dataset ids.
TABLES = {"flair": "flair_hub", "s2_naip": "s2_naip", "treesatai_ts": "treesatai_ts",
          "pastis_hd": "pastis_hd"}  # fmt: skip


def _official_table(section: str) -> dict[str, tuple[int, ...]]:
    base = shared_dir()
    path = base / "spec" / "OFFICIAL_STATE_DICT.md" if base else None
    if path is None or not path.is_file():
        pytest.skip("the official name/shape table (../shared/spec) is not on this machine")
    block = path.read_text().split(f"## {section}:")[1].split("\n## ")[0]
    rows = [ln.split("\t") for ln in block.splitlines() if "\t" in ln]
    return {name: ast.literal_eval(shape) for name, shape in rows}


@pytest.mark.parametrize("section", list(TABLES))
def test_every_tensor_of_the_published_layout_lands_where_the_table_says(section, tmp_path):
    from maestro.datasets import catalog

    table = _official_table(section)
    g = torch.Generator().manual_seed(0)
    official = {name: torch.randn(*shape, generator=g) for name, shape in table.items()}
    torch.save({"state_dict": {f"model.{k}": v for k, v in official.items()}}, tmp_path / "o.ckpt")
    dataset = catalog().dataset(TABLES[section])
    model, cfg = import_checkpoint(tmp_path / "o.ckpt", dataset)
    ours = model.state_dict()
    assert (cfg.embed_dim, cfg.depth, cfg.inter_depth) == (768, 12, 3)
    heads = [k for k in official if k.startswith("heads.")]
    assert len(ours) == len(official) - len(heads)  # every pretrained tensor, once
    for name, value in official.items():
        if name in heads:
            continue
        target = ours[our_name(name)]
        if name.startswith("embed_to_rec."):
            patch = dataset.store.modality(name.split(".")[1]).patch_size
            value = pixel_rows(value, patch)
        assert torch.equal(target, value.reshape(target.shape)), name


def test_pixel_rows_go_from_p1_p2_c_to_c_p_q():
    c, p, i = 3, 2, 5
    w = torch.arange(p * p * c * i, dtype=torch.float32).reshape(p * p * c, i, 1, 1)
    ours = pixel_rows(w, p).reshape(c, p, p, i)
    official = w.reshape(p, p, c, i)
    for ci, p1, p2 in [(0, 0, 1), (2, 1, 0), (1, 1, 1)]:
        assert torch.equal(ours[ci, p1, p2], official[p1, p2, ci])


def _inverse(state: dict) -> dict:
    """Our state dict in the official names and layouts (the mapping read backwards)."""
    out = {}
    for k, v in state.items():
        k2 = re.sub(r"\.to_out\.(weight|bias)$", r".to_out.0.\1", k)
        k2 = re.sub(r"\.1\.net\.3\.(weight|bias)$", r".1.net.4.\1", k2)
        for a, b in (("encoders.", "encoder."), ("decoders.", "decoder."),
                     ("inter.", "encoder_inter."), ("to_decoder.", "enc_to_dec.")):  # fmt: skip
            if k2.startswith(a):
                k2 = b + k2[len(a) :]
        if m := re.fullmatch(r"patchify\.(\w+)\.(proj|norm)\.(\d+)\.(weight|bias)", k2):
            part = "conv" if m.group(2) == "proj" else "norm"
            k2 = f"patch_embed.{m.group(1)}.patchify_bands.{m.group(3)}.{part}.{m.group(4)}"
        elif m := re.fullmatch(r"pixelify\.(\w+)\.proj\.(\d+)\.(weight|bias)", k2):
            k2 = f"embed_to_rec.{m.group(1)}.pixelify_bands.{m.group(2)}.conv.{m.group(3)}"
            p = PATCHES[m.group(1)]
            v = rearrange(v.reshape(v.shape[0], -1), "(c p q) i -> (p q c) i", p=p, q=p)
            v = v[..., None, None] if m.group(3) == "weight" else v[:, 0]
        elif k2.startswith("mask_tokens."):
            k2, v = "mask_token." + k2.split(".", 1)[1], v.reshape(1, 1, 1, 1, -1)
        out[k2] = v
    return out


PATCHES: dict[str, int] = {}


def _reduced(tmp_path, ema: bool = True):
    """A tiny-preset model on the small test dataset, saved in the official layout."""
    j = {**job(), "model": {"size": "tiny", "depth": 3, "inter_depth": 1}}
    dataset = job_catalog(j).dataset("treesatai_ts")
    PATCHES.update({m: dataset.store.modality(m).patch_size for m in dataset.inputs})
    torch.manual_seed(5)
    raw = build_mae(model_config(j), dataset)
    torch.manual_seed(6)
    ema_model = build_mae(model_config(j), dataset)
    state = {f"model.{k}": v for k, v in _inverse(raw.state_dict()).items()}
    if ema:
        state |= {f"ema_model.{k}": v for k, v in _inverse(ema_model.state_dict()).items()}
    path = tmp_path / "pretrain-epoch=99.ckpt"
    torch.save({"state_dict": state, "epoch": 99}, path)
    return path, dataset, raw, ema_model, state


def test_a_reduced_checkpoint_round_trips_and_ema_weights_win(tmp_path):
    path, dataset, raw, ema_model, _ = _reduced(tmp_path)
    model, cfg = import_checkpoint(path, dataset)
    assert (cfg.embed_dim, cfg.depth, cfg.inter_depth, cfg.decoder_depth) == (192, 3, 1, 1)
    for k, v in ema_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    path, *_ = (
        _reduced(tmp_path / "noema", ema=False) if (tmp_path / "noema").mkdir() is None else ()
    )
    model, _ = import_checkpoint(path, dataset)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in raw.state_dict().items())


def test_wrong_shape_missing_and_unknown_tensors_are_named(tmp_path):
    _, dataset, _, _, state = _reduced(tmp_path, ema=False)
    key = "model.encoder_inter.layers.0.0.to_qkv.weight"
    shape = r"encoder_inter\.layers\.0\.0\.to_qkv\.weight: \(7, 192\) vs ours"
    unknown = r"unknown tensors: \['encoder_inter\.extra"
    for change, pattern in (
        ({key: torch.zeros(7, 192)}, shape),
        ({"model.encoder_inter.extra.weight": torch.zeros(1)}, unknown),
    ):
        torch.save({"state_dict": state | change}, tmp_path / "bad.ckpt")
        with pytest.raises(ValueError, match=r"bad\.ckpt: .*" + pattern):
            import_checkpoint(tmp_path / "bad.ckpt", dataset)
    torch.save({"state_dict": {k: v for k, v in state.items() if "to_decoder" not in k
                               and "enc_to_dec.s2." not in k}}, tmp_path / "bad.ckpt")  # fmt: skip
    with pytest.raises(ValueError, match=r"missing tensors: \['to_decoder\.s2"):
        import_checkpoint(tmp_path / "bad.ckpt", dataset)
    torch.save({"weights": 1}, tmp_path / "none.ckpt")
    with pytest.raises(ValueError, match=r"none\.ckpt: no 'ema_model\.\*' or 'model\.\*' tensors"):
        import_checkpoint(tmp_path / "none.ckpt", dataset)


def test_a_pickled_configuration_needs_trust_and_a_patch_mismatch_is_named(tmp_path):
    path, dataset, _, _, state = _reduced(tmp_path, ema=False)
    torch.save({"state_dict": state, "hyper_parameters": {"cfg": re.compile("x")}}, path)
    with pytest.raises(ValueError, match="pass --trust-pickle"):
        import_checkpoint(path, dataset)
    assert import_checkpoint(path, dataset, trust_pickle=True)[1].embed_dim == 192
    other = job_catalog({"overrides": {"treesatai_ts": {"modalities": {"s2": {"patch_size": 3}}}}})
    with pytest.raises(ValueError, match=r"patch sizes differ .*'s2': \(\d+, 3\)"):
        import_checkpoint(path, other.dataset("treesatai_ts"), trust_pickle=True)


def test_cli_imports_then_a_probe_starts_from_it(tmp_path, small_stores):
    path, dataset, _, ema_model, _ = _reduced(tmp_path)
    out = tmp_path / "model.pt"
    j = json.dumps({"overrides": job()["overrides"]})
    # a downloaded folder (its one .ckpt file), as the workflow's import_checkpoint passes it
    assert main(["import-checkpoint", "--ckpt", str(tmp_path), "--dataset", "treesatai_ts",
                 "--out", str(out), "--job", j]) == 0  # fmt: skip
    loaded, record = load_mae(out, dataset)
    assert record["imported_from"] == str(path)
    assert torch.equal(loaded.state_dict()["inter.norm.weight"], ema_model.inter.norm.weight)
    probe = {"overrides": job()["overrides"], "model": {"size": "tiny", "head_heads": 2},
             "phase": {"epochs": 1, "batch_size": 4}, "released": "IGNF/test"}  # fmt: skip
    args = ["downstream", "--mode", "probe", "--dataset", "treesatai_ts", "--store-path",
            str(small_stores["treesatai_ts"]), "--out-dir", str(tmp_path / "probe"),
            "--init", str(out), "--job", json.dumps(probe), "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((tmp_path / "probe" / "metrics.json").read_text())
    assert metrics["mode"] == "probe" and 0 <= metrics["test"]["weighted_f1"] <= 1


def test_a_truncated_checkpoint_is_an_error_not_a_shallower_model(tmp_path):
    """Depths are read from the tensors, so missing blocks must not shrink the model: an EMA
    copy without the inter-group blocks, a group without its last block, a gap in the
    layers are errors naming the file (the import built depth 0 / 2 models before)."""
    _, dataset, _, _, state = _reduced(tmp_path)
    cases = (
        (lambda k: k.startswith("ema_model.encoder_inter."), r"EMA copy .* lacks \d+ Transformer"),
        (lambda k: ".encoder.s2.layers.1." in k, r"encoder groups of different depths"),
        (lambda k: ".encoder.aerial.layers.0." in k, r"encoder\.aerial: expected layers 0..1"),
        (lambda k: "decoder." in k and ".layers." in k, r"expected decoder\.<group>\.layers"),
    )
    for drop, pattern in cases:
        torch.save({"state_dict": {k: v for k, v in state.items() if not drop(k)}},
                   tmp_path / "cut.ckpt")  # fmt: skip
        with pytest.raises(ValueError, match=r"cut\.ckpt: .*" + pattern):
            import_checkpoint(tmp_path / "cut.ckpt", dataset)
