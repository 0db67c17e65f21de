"""The demo TreeSatAI-TS writer: real on-disk format, determinism and planted structure."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from maestro.data.dates import parse_yyyymmdd, product_date
from maestro.data.demo import DemoConfig, generate
from maestro.data.demo.world import planted_groups
from maestro.datasets import catalog
from maestro.datasets.bands import S2_BANDS
from maestro.datasets.treesatai_ts import GENERA

REAL = "treesatai_ts/IGNF_MAESTRO__tests_data"
REAL_H5 = "sentinel-ts/Betula_spec._1_15679_WEFL_NLF_2019.h5"
ACQ = {"s2": 12, "s1_asc": 6, "s1_des": 9}
CFG = DemoConfig(n_train=3, n_val=1, n_test=1, acquisitions=ACQ, cloudy_fraction=0.25, seed=3)


def _store(overrides: dict | None = None):
    return catalog({"treesatai_ts": overrides} if overrides else None).store("treesatai_ts")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("treesat") / "TreeSatAI-TS"
    generate(_store(), root, CFG)
    return root


def _rows(root: Path) -> list[dict[str, str]]:
    rows = []
    for split in ("train", "val", "test"):
        with (root / f"{split}.csv").open(newline="") as fh:
            rows += [dict(r, split=split) for r in csv.DictReader(fh)]
    return rows


def _h5(root: Path) -> list[Path]:
    return sorted((root / "sentinel-ts").glob("*.h5"))


def test_layout_and_splits(demo: Path) -> None:
    rows = _rows(demo)
    assert [r["split"] for r in rows] == ["train"] * 3 + ["val", "test"]
    assert len({r["aerial_name"] for r in rows}) == 5
    for r in rows:
        stem = r["aerial_name"].removesuffix(".tif")
        year = int(r["aerial_date"][:4])
        assert r["sen_name"] == f"{stem}_{year}.h5"
        assert (demo / "aerial" / r["aerial_name"]).is_file()
        assert (demo / "sentinel-ts" / r["sen_name"]).is_file()
        genus, _species, k, tile_id, *suffix = stem.split("_")
        assert suffix == ["WEFL", "NLF"] and k.isdigit() and tile_id.isdigit()
        # the file is named after its dominant genus
        fractions = {g: float(r[g]) for g in GENERA}
        assert genus == max(fractions, key=fractions.__getitem__)


def test_csv_header_is_the_real_one(demo: Path, realdata: Path) -> None:
    real_header = (realdata / REAL / "train.csv").read_text().splitlines()[0]
    for split in ("train", "val", "test"):
        assert (demo / f"{split}.csv").read_text().splitlines()[0] == real_header
    assert real_header == "aerial_name,sen_name,aerial_date," + ",".join(GENERA)


def test_csv_fractions_and_dates(demo: Path) -> None:
    for r in _rows(demo):
        texts = [r[g] for g in GENERA]
        assert all(len(t.split(".")[1]) <= 5 for t in texts)
        assert sum(float(t) for t in texts) == pytest.approx(1.0, abs=1e-9)
        year, doy, hour = parse_yyyymmdd(r["aerial_date"])
        assert year >= 2017 and 152 <= doy <= 244 and hour == 0


def test_aerial_geotiff_profile(demo: Path) -> None:
    nir, visible = [], []
    for path in sorted((demo / "aerial").glob("*.tif")):
        with rasterio.open(path) as src:
            assert (src.count, src.width, src.height) == (4, 304, 304)
            assert src.dtypes == ("uint8",) * 4
            assert src.crs.to_epsg() == 25832
            assert src.res == pytest.approx((0.2, 0.2))
            assert src.nodata is None
            assert src.profile["tiled"] is False and src.profile["interleave"] == "pixel"
            # the tile window (2 px border) lies on the 10 m Sentinel grid
            west, north = src.transform.c + 0.4, src.transform.f - 0.4
            assert west / 10 == pytest.approx(round(west / 10)) and north / 10 == pytest.approx(
                round(north / 10)
            )
            img = src.read()
        nir.append(img[0].mean())
        visible.append(img[1:].mean())
    # NIR (band 1) is brighter than the visible bands over these forests (on average: each
    # tile's band groups carry their own acquisition gain)
    assert np.mean(nir) > np.mean(visible) + 20


def test_aerial_profile_matches_real_file(demo: Path, realdata: Path) -> None:
    real_path = next((realdata / REAL / "aerial").glob("*.tif"))
    with rasterio.open(real_path) as real:
        want = {k: v for k, v in real.profile.items() if k not in ("crs", "transform")}
        want_interp, want_epsg = real.colorinterp, real.crs.to_epsg()
    for path in sorted((demo / "aerial").glob("*.tif")):
        with rasterio.open(path) as src:
            assert {k: v for k, v in src.profile.items() if k not in ("crs", "transform")} == want
            assert src.colorinterp == want_interp and src.crs.to_epsg() == want_epsg


def test_hdf5_matches_real_file(demo: Path, realdata: Path) -> None:
    with h5py.File(realdata / REAL / REAL_H5, "r") as real:
        layout = {k: (real[k].dtype, real[k].shape[1:]) for k in real}
        assert not real.attrs
    for path in _h5(demo):
        with h5py.File(path, "r") as f:
            assert not f.attrs
            assert {k: (f[k].dtype, f[k].shape[1:]) for k in f} == layout
            for key in ("sen-2-products", "sen-1-asc-products", "sen-1-des-products"):
                assert h5py.check_string_dtype(f[key].dtype).encoding == "utf-8"
            assert f["sen-2-data"].shape == (ACQ["s2"], 10, 6, 6)
            assert f["sen-2-masks"].shape == (ACQ["s2"], 2, 6, 6)
            assert f["sen-1-asc-data"].shape == (ACQ["s1_asc"], 2, 6, 6)
            assert f["sen-1-des-data"].shape == (ACQ["s1_des"], 2, 6, 6)


def test_hdf5_values(demo: Path) -> None:
    for path in _h5(demo):
        year = int(path.stem.rsplit("_", 1)[1])
        with h5py.File(path, "r") as f:
            s2, masks = f["sen-2-data"][()], f["sen-2-masks"][()]
            assert np.array_equal(s2, np.rint(s2)) and s2.min() >= 1 and s2.max() < 20000
            assert masks.min() >= 0 and masks.max() <= 100
            for mod in ("asc", "des"):
                s1 = f[f"sen-1-{mod}-data"][()]
                assert np.nanmin(s1) > 0 and np.nanmax(s1) < 2.0
                assert 1e-3 < np.nanmedian(s1[:, 1]) < np.nanmedian(s1[:, 0]) < 0.5  # VH < VV
            for key in ("sen-2-products", "sen-1-asc-products", "sen-1-des-products"):
                dates = [product_date(n) for n in f[key][()]]
                assert all(y == year and 1 <= d <= 366 for y, d, _ in dates)
                assert [d for _, d, _ in dates] == sorted(d for _, d, _ in dates)
            names = [n.decode() for n in f["sen-2-products"][()]]
            assert all(n.startswith(("S2A_MSIL2A_", "S2B_MSIL2A_")) for n in names)
            assert len({product_date(n) for n in names}) == len(names)  # distinct S2 days


def test_cloud_masks_exactly_on_cloudy_pixels(demo: Path) -> None:
    blue = S2_BANDS.index("B2")
    for path in _h5(demo):
        with h5py.File(path, "r") as f:
            s2, masks = f["sen-2-data"][()], f["sen-2-masks"][()]
            doys = np.array([product_date(n)[1] for n in f["sen-2-products"][()]])
        cloudy, snowy = masks[:, 1] > 0, masks[:, 0] > 0
        assert cloudy.any(axis=(1, 2)).sum() == round(CFG.cloudy_fraction * len(s2))
        assert not (cloudy & snowy).any()
        # snow only on winter dates
        assert np.all((doys <= 59) | (doys >= 335) | ~snowy.any(axis=(1, 2)))
        clear = ~cloudy & ~snowy
        # clouds are bright in every band: every cloudy pixel beats every clear one
        assert s2[:, blue][cloudy].min() > s2[:, blue][clear].max()
        assert (s2.transpose(0, 2, 3, 1)[cloudy].min(axis=0) > 2000).all()


def test_planted_s2_band_groups(demo: Path) -> None:
    pixels = []
    for path in _h5(demo):
        with h5py.File(path, "r") as f:
            s2, masks = f["sen-2-data"][()], f["sen-2-masks"][()]
        pixels.append(s2.transpose(0, 2, 3, 1)[(masks == 0).all(axis=1)])
    corr = np.corrcoef(np.concatenate(pixels).T)
    groups = [[S2_BANDS.index(b) for b in g] for g in planted_groups("s2")]
    within = [corr[i, j] for g in groups for i, j in itertools.combinations(g, 2)]
    across = [corr[i, j] for a, b in itertools.combinations(groups, 2) for i in a for j in b]
    assert min(within) > 0.85  # the band-group cut merges bands from |r| >= 0.85 (W1)
    assert max(np.abs(across)) < min(within) - 0.25
    assert np.mean(np.abs(across)) < 0.5


def test_labels_vary_and_some_genera_are_rare(tmp_path: Path) -> None:
    # a coarse aerial keeps this fast; the labels come from the same Voronoi stands
    store = _store({"modalities": {"aerial": {"resolution_m": 1.0}}})
    cfg = DemoConfig(n_train=60, n_val=0, n_test=0, acquisitions=ACQ, parcels=6, seed=0)
    generate(store, tmp_path / "ds", cfg)
    rows = _rows(tmp_path / "ds")
    with rasterio.open(tmp_path / "ds" / "aerial" / rows[0]["aerial_name"]) as src:
        assert (src.width, src.res[0]) == (64, 1.0)
    positive = np.array([[float(r[g]) > 0.07 for g in GENERA] for r in rows])
    assert len({tuple(p) for p in positive}) > 20  # multi-label targets vary across tiles
    assert 1.5 < positive.sum(axis=1).mean() < 5
    freq = np.sort(positive.mean(axis=0))
    assert freq[-1] > 0.3 and freq[0] < 0.05  # unequal genus frequencies


def test_determinism(tmp_path: Path, demo: Path) -> None:
    generate(_store(), tmp_path / "again", CFG)
    files = sorted(p.relative_to(demo) for p in demo.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file()
    )
    for rel in files:
        assert (demo / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    other = DemoConfig(**{**CFG.__dict__, "seed": 4})
    generate(_store(), tmp_path / "other", other)
    assert (tmp_path / "other" / "train.csv").read_text() != (demo / "train.csv").read_text()


def test_sizes_follow_the_store_spec(tmp_path: Path) -> None:
    aerial = {"resolution_m": 2.0, "patch_size": 10}
    store = _store({"tile_m": 120, "crop_m": 120, "modalities": {"aerial": aerial}})
    cfg = DemoConfig(n_train=1, n_val=1, n_test=1, acquisitions=ACQ, seed=0)
    generate(store, tmp_path / "ds", cfg)
    row = _rows(tmp_path / "ds")[0]
    with rasterio.open(tmp_path / "ds" / "aerial" / row["aerial_name"]) as src:
        assert (src.width, src.height, src.res[0]) == (64, 64, 2.0)
    with h5py.File(tmp_path / "ds" / "sentinel-ts" / row["sen_name"], "r") as f:
        assert f["sen-2-data"].shape[1:] == (10, 12, 12)
        assert f["sen-1-des-data"].shape[1:] == (2, 12, 12)


def test_bad_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="s1_des"):
        generate(_store(), tmp_path / "a", DemoConfig(1, 1, 1, acquisitions={"s2": 4, "s1_asc": 4}))
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError, match="exists"):
        generate(_store(), tmp_path / "exists", CFG)
