"""Bad raw inputs through the real readers and the converter (issue 4's list).

Each case either fails with a RawFormatError that names the offending file (and no store is
left at the output path), or is handled as documented in docs/decisions.md.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from maestro.data.demo import DemoConfig, generate
from maestro.data.errors import RawFormatError
from maestro.data.readers import get_reader
from maestro.data.torch_dataset import MaestroDataset
from maestro.datasets import catalog
from maestro.store.convert import convert

SMALL = {
    "pastis_hd": {"tile_m": 320, "modalities": {"s2": {"num_dates": 6}}},
    "flair_hub": {"modalities": {"aerial": {"resolution_m": 0.8}, "dem": {"resolution_m": 0.8}}},
}
ACQ = {"s2": 8, "s1_asc": 4, "s1_des": 4}


def _demo(tmp_path: Path, store: str, **cfg) -> tuple:
    spec = catalog(SMALL).store(store)
    root = tmp_path / "raw"
    generate(
        spec,
        root,
        DemoConfig(**{"n_train": 3, "n_val": 1, "n_test": 1, "acquisitions": ACQ, **cfg}),
    )
    return spec, root


def _fails(spec, root: Path, tmp_path: Path, names: str) -> RawFormatError:
    out = tmp_path / "store.zarr"
    with pytest.raises(RawFormatError) as err:
        convert(get_reader(spec, root), out, shard_samples=2)
    assert names in str(err.value), str(err.value)
    assert not out.exists()  # no store at the output path (resumable shards may remain aside)
    return err.value


def _rewrite_tif(path: Path, **changes) -> None:
    with rasterio.open(path) as src:
        data, profile = src.read(), src.profile
    data = changes.pop("data", data)
    profile.update(count=data.shape[0], **changes)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_truncated_geotiff(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    tif = sorted((root / "aerial").glob("*.tif"))[1]
    tif.write_bytes(tif.read_bytes()[:2000])
    _fails(spec, root, tmp_path, tif.name)


def test_truncated_hdf5(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    h5 = sorted((root / "sentinel-ts").glob("*.h5"))[0]
    h5.write_bytes(h5.read_bytes()[:5000])
    _fails(spec, root, tmp_path, h5.name)


def test_truncated_npy(tmp_path):
    spec, root = _demo(tmp_path, "pastis_hd")
    npy = sorted((root / "DATA_S2").glob("*.npy"))[0]
    npy.write_bytes(npy.read_bytes()[:300])
    _fails(spec, root, tmp_path, npy.name)


def test_wrong_band_count(tmp_path):
    spec, root = _demo(tmp_path, "flair_hub")
    tif = sorted(root.rglob("*SENTINEL1-ASC_TS*.tif"))[0]
    with rasterio.open(tif) as src:
        data = src.read()
    _rewrite_tif(tif, data=data[:-1])
    err = _fails(spec, root, tmp_path, tif.name)
    assert "bands" in str(err)


def test_wrong_crs(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    tif = sorted((root / "aerial").glob("*.tif"))[0]
    _rewrite_tif(tif, crs="EPSG:4326")
    _fails(spec, root, tmp_path, tif.name)


def test_wrong_resolution(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    tif = sorted((root / "aerial").glob("*.tif"))[0]
    with rasterio.open(tif) as src:
        t = src.transform
    _rewrite_tif(tif, transform=rasterio.Affine(0.4, 0, t.c, 0, -0.4, t.f))
    _fails(spec, root, tmp_path, tif.name)


def test_split_id_without_files(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    csv = pd.read_csv(root / "train.csv")
    csv.loc[0, "aerial_name"] = "Picea_abies_9_99999_WEFL_NLF.tif"
    csv.to_csv(root / "train.csv", index=False)
    _fails(spec, root, tmp_path, "Picea_abies_9_99999_WEFL_NLF")


def test_empty_dataset(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    for split in ("train", "val", "test"):
        header = (root / f"{split}.csv").read_text().splitlines()[0]
        (root / f"{split}.csv").write_text(header + "\n")
    err = _fails(spec, root, tmp_path, str(root))
    assert "at least one sample" in str(err)


def test_label_out_of_range(tmp_path):
    spec, root = _demo(tmp_path, "flair_hub")
    tif = sorted(root.rglob("*AERIAL_LABEL-COSIA*.tif"))[0]
    with rasterio.open(tif) as src:
        data = src.read()
    data[0, 0, 0] = 30  # CoSIA has 19 raw values
    _rewrite_tif(tif, data=data)
    patch = tif.stem.split("AERIAL_LABEL-COSIA_")[1]
    err = _fails(spec, root, tmp_path, patch)
    assert "class values" in str(err) or "label" in str(err)


# --- documented handling: these convert, and the model sees finite, complete inputs -------


def _convert_and_items(spec, root, tmp_path, dataset: str, train: bool = False) -> list[dict]:
    out = tmp_path / "ok.zarr"
    convert(get_reader(spec, root), out, shard_samples=2)
    ds = MaestroDataset(out, catalog(SMALL).dataset(dataset), ("train", "val", "test"), train=train)
    return [ds[k] for k in range(len(ds))]


def test_nan_backscatter_becomes_zero(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts")
    for h5 in (root / "sentinel-ts").glob("*.h5"):
        with h5py.File(h5, "r+") as f:
            x = f["sen-1-asc-data"][...]
            x[:] = np.nan  # a whole series of nodata
            f["sen-1-asc-data"][...] = x
    items = _convert_and_items(spec, root, tmp_path, "treesatai_ts")
    for it in items:
        assert torch.isfinite(it["inputs"]["s1_asc"]).all()
        assert (it["inputs"]["s1_asc"] == 0).all()  # decision D6: non-finite -> 0
        assert torch.isfinite(it["inputs"]["s2"]).all()


def test_fewer_dates_than_asked(tmp_path):
    spec, root = _demo(tmp_path, "pastis_hd", acquisitions={"s2": 3, "s1_asc": 4, "s1_des": 4})
    items = _convert_and_items(spec, root, tmp_path, "pastis_hd")
    for it in items:
        dates = it["dates"]["s2"]
        assert dates.shape == (6, 3)  # num_dates slots filled with real acquisitions (D5)
        days = dates[:, 0] * 1000 + dates[:, 1]
        assert (days[1:] >= days[:-1]).all()  # in time order, some repeated
        assert len(torch.unique(days)) < 6


def test_all_dates_cloudy(tmp_path):
    spec, root = _demo(tmp_path, "treesatai_ts", acquisitions={"s2": 40, "s1_asc": 4, "s1_des": 4})
    n = spec.modality("s2").num_dates  # 16 < 40: chunks of 2 acquisitions
    for h5 in (root / "sentinel-ts").glob("*.h5"):
        with h5py.File(h5, "r+") as f:
            f["sen-2-masks"][...] = np.full(f["sen-2-masks"].shape, 100.0, np.float32)
    for train in (False, True):
        items = _convert_and_items(spec, root, tmp_path / str(train), "treesatai_ts", train)
        for it in items:  # a chunk with no clean date keeps all its dates as candidates
            assert it["inputs"]["s2"].shape[0] == n and torch.isfinite(it["inputs"]["s2"]).all()
            assert len(torch.unique(it["dates"]["s2"][:, 1])) == n  # one distinct date per chunk
