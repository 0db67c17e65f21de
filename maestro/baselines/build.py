"""Build, save and reload a baseline model for a dataset (the downstream jobs' entry point).

A baseline is described by a :class:`BaselineSpec` (plain data, the job configuration's
``baseline`` section): which backbone, which size, which fusion, which weights (a checkpoint
folder or file, or ``None`` for random weights: the demo's "random init" rows), the token
grid per modality and the head. :func:`build_baseline` makes the model for a dataset;
:func:`baseline_record` / :func:`load_baseline` save and rebuild it (a probe result is the
start of the fine-tuning, as for MAESTRO).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from maestro.baselines import croma, dinov2, dinov2_sat, dofa, prithvi, satmae
from maestro.baselines.model import BaselineModel
from maestro.baselines.spec import SINGLE_MODALITY, BaselineSpec, spec_from
from maestro.datasets.spec import DatasetSpec
from maestro.train import checkpoint
from maestro.train.build import label_px

#: Record kind of a baseline ``model.pt``.
KIND = "baseline"


def _inputs(spec: BaselineSpec, dataset: DatasetSpec) -> list[str]:
    """The modalities the backbone reads (DOFA: those with wavelengths or SAR bands; SatMAE
    and Prithvi: Sentinel-2)."""
    if spec.model in SINGLE_MODALITY:
        return [m for m in dataset.inputs if m == SINGLE_MODALITY[spec.model]]
    if spec.model == "croma":
        return [m for m in dataset.inputs if m in (*croma.S1_MODALITIES, "s2")]
    if spec.model != "dofa":
        return list(dataset.inputs)
    out = []
    for m in dataset.inputs:
        mod = dataset.store.modality(m)
        try:
            dofa.band_wavelengths(mod.model_bands, mod.bands, mod.wavelengths_um)
        except ValueError:
            continue  # e.g. the DEM: DOFA has no embedding for it
        out.append(m)
    return out


def _weights_file(path: str) -> Path:
    """A checkpoint file, or the one ``.pth`` / ``.pt`` file of a downloaded folder."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: no such checkpoint file or folder (put the published checkpoint there; "
            "docs/baselines.md, Weights as data)"
        )
    found = sorted([*p.glob("*.pth"), *p.glob("*.pt")]) if p.is_dir() else []
    if len(found) != 1:
        raise FileNotFoundError(
            f"{p}: expected a checkpoint file or a folder with one, found {found}"
        )
    return found[0]


def _grids(spec: BaselineSpec, dataset: DatasetSpec, mods: list[str], patch: int) -> dict:
    store = dataset.store
    if spec.grid is not None:
        return dict.fromkeys(mods, spec.grid)
    return {m: max(1, round(store.modality(m).pixels(store.crop_m) / patch)) for m in mods}


def _s2_backbone(spec: BaselineSpec, dataset: DatasetSpec, mods: list[str]) -> torch.nn.Module:
    """SatMAE or Prithvi over the S2 series: loaded (RGB / HLS kernels widened to the S2
    bands by name) or random."""
    module = satmae if spec.model == "satmae" else prithvi
    bands = dataset.store.modality("s2").model_bands
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    grids = _grids(spec, dataset, mods, module.PATCH)
    if spec.model == "satmae":
        net = (
            satmae.load_satmae(_weights_file(spec.weights), bands, spec.size, gen)
            if spec.weights
            else satmae.SatMAE(spec.size, in_chans=len(bands))
        )
        return satmae.SatMAEBackbone(net, grids)
    net = (
        prithvi.load_prithvi(_weights_file(spec.weights), bands, spec.size, gen)
        if spec.weights
        else prithvi.Prithvi(spec.size, in_chans=len(bands))
    )
    return prithvi.PrithviBackbone(net, grids)


def build_baseline(spec: BaselineSpec, dataset: DatasetSpec) -> BaselineModel:
    """The baseline for ``dataset``: backbone (loaded from ``spec.weights`` or random) + head."""
    mods = _inputs(spec, dataset)
    if not mods:
        raise ValueError(f"baseline {spec.model}: no input of {dataset.name} it can read")
    specs = {m: dataset.store.modality(m) for m in mods}
    if spec.model in ("dinov2", "dinov2_sat"):
        if spec.model == "dinov2":
            net = (
                dinov2.load_dinov2(spec.weights)
                if spec.weights
                else dinov2.random_dinov2(spec.size, spec.seed)
            )
        else:
            net = (
                dinov2_sat.load_dinov2_sat(_weights_file(spec.weights), spec.size)
                if spec.weights
                else dinov2_sat.random_dinov2_sat(spec.size, spec.seed)
            )
        bands = {m: s.model_bands for m, s in specs.items()}
        grids = _grids(spec, dataset, mods, int(net.config.patch_size))
        backbone: torch.nn.Module = dinov2.Dinov2Backbone(
            net, bands, grids, spec.fusion, seed=spec.seed
        )
    elif spec.model == "dofa":
        torch.manual_seed(spec.seed)
        net = (
            dofa.load_dofa(_weights_file(spec.weights), spec.size)
            if spec.weights
            else dofa.DOFA(spec.size)
        )
        waves = {
            m: dofa.band_wavelengths(s.model_bands, s.bands, s.wavelengths_um)
            for m, s in specs.items()
        }
        backbone = dofa.DOFABackbone(
            net, waves, _grids(spec, dataset, mods, dofa.PATCH), spec.fusion
        )
    elif spec.model == "croma":
        torch.manual_seed(spec.seed)
        net = (
            croma.load_croma(_weights_file(spec.weights), spec.size)
            if spec.weights
            else croma.CROMA(spec.size)
        )
        grid = _grids(spec, dataset, ["s2"], croma.PATCH)["s2"]  # S1 and S2 alike
        s1 = [m for m in mods if m in croma.S1_MODALITIES]
        backbone = croma.CROMABackbone(net, specs["s2"].model_bands, s1, grid, spec.fusion)
    else:
        backbone = _s2_backbone(spec, dataset, mods)
    dates = {m: s.num_dates for m, s in specs.items()}
    if "joint" in backbone.grids:  # CROMA's cross encoding: one per S2 date
        dates["joint"] = specs["s2"].num_dates
    ref = dataset.store.modality(dataset.task.ref_modality or mods[0])
    ref_grid = ref.grid(dataset.store.crop_m)  # the grid of MAESTRO's heads
    return BaselineModel(
        backbone, dataset.task, dates, label_px(dataset), spec.head, spec.head_heads,
        spec.head_norm, ref_grid=ref_grid,
    )  # fmt: skip


def baseline_record(model: BaselineModel, spec: BaselineSpec, dataset: DatasetSpec) -> dict:
    """The payload of a baseline ``model.pt``: the spec, the dataset and the weights."""
    return {
        "kind": KIND,
        "baseline": dataclasses.asdict(spec),
        "dataset": dataset.name,
        "inputs": list(dataset.inputs),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def load_baseline(path: str | Path, dataset: DatasetSpec) -> tuple[BaselineModel, BaselineSpec]:
    """Rebuild a saved baseline (its random or loaded backbone is replaced by the saved
    weights) for ``dataset``."""
    record = checkpoint.load(path)
    if record.get("kind") != KIND:
        raise ValueError(f"{path}: not a baseline checkpoint (kind {record.get('kind')!r})")
    spec = dataclasses.replace(spec_from(record["baseline"]), weights=None)  # rebuilt, then loaded
    model = build_baseline(spec, dataset)
    model.load_state_dict(record["state_dict"])
    return model, spec_from(record["baseline"])
