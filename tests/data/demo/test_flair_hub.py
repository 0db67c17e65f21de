"""Demo FLAIR-HUB writer: real on-disk layout, schemas, determinism, planted structure."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from maestro.data.demo import DemoConfig, generate
from maestro.data.demo.flair_hub import OBJECT_HEIGHT_M, patch_path
from maestro.data.demo.world import planted_groups
from maestro.datasets import catalog
from maestro.datasets.flair_hub import FOLDER_TOKENS

OVERRIDES = {
    "flair_hub": {"modalities": {"aerial": {"resolution_m": 0.8}, "dem": {"resolution_m": 0.8}}}
}
STORE = catalog(OVERRIDES).store("flair_hub")
CFG = DemoConfig(
    n_train=4,
    n_val=2,
    n_test=3,
    acquisitions={"s2": 6, "s1_asc": 3, "s1_des": 3},
    cloudy_fraction=0.34,
    parcels=6,
    flair2_fraction=0.5,
    seed=7,
)
MTD = "GLOBAL_ALL_MTD"
SERIES = {"s2": "SENTINEL2", "s1_asc": "SENTINEL1-ASC", "s1_des": "SENTINEL1-DESC"}
CHANNELS = {"aerial": 4, "dem": 2, "s2": 10, "s2_mask": 2, "s1_asc": 2, "s1_des": 2, "label": 1}
DTYPES = {
    "aerial": "uint8",
    "dem": "float32",
    "s2": "uint16",
    "s2_mask": "uint8",
    "s1_asc": "float32",
    "s1_des": "float32",
    "label": "uint8",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flair_hub") / "FLAIR-HUB"
    generate(STORE, root, CFG)
    return root


def _ids(root: Path, name: str) -> list[str]:
    return pd.read_csv(root / name, dtype=str)["patch_id"].tolist()


def _all_ids(root: Path) -> list[str]:
    return [pid for s in ("train", "val", "test") for pid in _ids(root, f"{s}.csv")]


def _series(root: Path, mod: str) -> dict[str, list[str]]:
    df = gpd.read_file(root / MTD / f"GLOBAL_{SERIES[mod]}_MTD_DATES.gpkg")
    out = {}
    for pid, cell in zip(df["patch_id"], df["acquisition_dates"], strict=True):
        d = json.loads(cell)
        assert list(d) == [str(k) for k in range(1, len(d) + 1)]  # keys "1".."T", in order
        out[pid] = list(d.values())
    return out


def _read(root: Path, pid: str, key: str) -> np.ndarray:
    with rasterio.open(root / patch_path(pid, FOLDER_TOKENS[key])) as src:
        return src.read()


def test_patch_path_reproduces_the_real_toy_csvs(realdata: Path) -> None:
    folder = realdata / "flair_hub" / "IGNF_FLAIR-HUB__csv" / "csv" / "FLAIR-HUB_TOY"
    csvs = sorted(folder.glob("FLAIR-HUB_TOY-DATASET_*.csv"))
    assert len(csvs) == 3
    checked = 0
    for csv in csvs:
        df = pd.read_csv(csv, dtype=str)
        tokens = [c for c in df.columns if c != "patch_id"]
        assert set(FOLDER_TOKENS.values()) <= set(tokens)
        for row in df.itertuples(index=False):
            for token, rel in zip(tokens, row[1:], strict=True):
                assert f"../{patch_path(row.patch_id, token)}" == rel
                checked += 1
    assert checked == 250 * 10


def test_geotiff_profiles_and_footprints(demo: Path) -> None:
    series = {mod: _series(demo, mod) for mod in SERIES}
    px = {m.name: m.pixels(STORE.tile_m) for m in STORE.modalities}
    assert (px["aerial"], px["dem"], px["s2"]) == (128, 128, 10)
    px |= {"label": px["aerial"], "s2_mask": px["s2"]}
    for pid in _all_ids(demo):
        footprints = []
        for key, token in FOLDER_TOKENS.items():
            t = len(series[key.removesuffix("_mask")][pid]) if key.startswith("s") else 1
            with rasterio.open(demo / patch_path(pid, token)) as src:
                assert src.count == t * CHANNELS[key], (pid, key)
                assert set(src.dtypes) == {DTYPES[key]}
                assert (src.height, src.width) == (px[key], px[key])
                assert src.crs.to_epsg() == 2154
                footprints.append(tuple(src.bounds))
        np.testing.assert_allclose(footprints, [footprints[0]] * len(footprints), atol=1e-6)
        minx, miny, maxx, maxy = footprints[0]
        assert maxx - minx == pytest.approx(102.4) and maxy - miny == pytest.approx(102.4)


def test_date_geopackages(demo: Path) -> None:
    aerial = gpd.read_file(demo / MTD / "GLOBAL_AERIAL_MTD_DATES.gpkg")
    assert list(aerial.columns) == ["patch_id", "date", "geometry"]
    assert aerial.crs.to_epsg() == 2154
    assert sorted(aerial["patch_id"]) == sorted(_all_ids(demo))
    dates = aerial["date"].tolist()
    assert all(isinstance(d, str) and len(d) == 8 and d.isdigit() for d in dates)
    assert any(d.endswith("00") for d in dates) and not all(d.endswith("00") for d in dates)
    for pid, geom, date in zip(aerial["patch_id"], aerial.geometry, dates, strict=True):
        assert date[:4] == pid.split("_")[0].split("-")[1]  # flown in the domain's year
        with rasterio.open(demo / patch_path(pid, "AERIAL_RGBI")) as src:
            np.testing.assert_allclose(geom.bounds, tuple(src.bounds), atol=1e-6)
    for mod, sensor in SERIES.items():
        df = gpd.read_file(demo / MTD / f"GLOBAL_{sensor}_MTD_DATES.gpkg")
        assert list(df.columns) == ["patch_id", "acquisition_dates", "geometry"]
        assert isinstance(df["acquisition_dates"].iloc[0], str)
        table = _series(demo, mod)
        assert sorted(table) == sorted(_all_ids(demo))
        a = CFG.acquisitions[mod]
        by_roi: dict[str, list[str]] = {}
        for pid, stamps in table.items():
            assert a <= len(stamps) <= a + a // 4
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
            roi = pid.rsplit("_", 1)[0]
            assert by_roi.setdefault(roi, stamps) == stamps  # one series per ROI


def test_split_csvs(demo: Path) -> None:
    splits = {s: _ids(demo, f"{s}.csv") for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [CFG.n_train, CFG.n_val, CFG.n_test]
    assert len(set(_all_ids(demo))) == sum(len(v) for v in splits.values())
    domains = {s: {pid.split("_")[0] for pid in v} for s, v in splits.items()}
    assert not (domains["train"] | domains["val"]) & domains["test"]
    for s, ids in splits.items():
        sub = _ids(demo, f"{s}_flair2.csv")
        assert 0 < len(sub) < len(ids) or len(ids) == 1
        assert set(sub) <= set(ids)
        assert len(sub) == max(1, round(CFG.flair2_fraction * len(ids)))
    assert (demo / "train.csv").read_text().splitlines()[0] == "patch_id"


def _digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_determinism(demo: Path, tmp_path: Path) -> None:
    generate(STORE, tmp_path / "again", CFG)
    first, second = _digest(demo), _digest(tmp_path / "again")
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    other = DemoConfig(**{**CFG.__dict__, "seed": CFG.seed + 1})
    generate(STORE, tmp_path / "other", other)
    assert _digest(tmp_path / "other") != first


def test_planted_height_and_labels(demo: Path) -> None:
    labels, heights = [], []
    for pid in _all_ids(demo):
        labels.append(_read(demo, pid, "label")[0])
        dsm, dtm = _read(demo, pid, "dem")
        heights.append(dsm - dtm)
        assert 0 < dtm.mean() < 1000
    lab, hgt = np.concatenate(labels).ravel(), np.concatenate(heights).ravel()
    assert lab.max() <= 18
    tall = np.isin(lab, [0, 12, 13])  # building, deciduous, coniferous
    flat = OBJECT_HEIGHT_M[lab] == 0
    assert tall.any() and flat.any()
    assert hgt[tall].mean() > 5.0 > 0.5 > np.abs(hgt[flat]).mean()
    # unequal class frequencies: the commonest class is far more frequent than the rarest seen
    counts = np.bincount(lab, minlength=19)
    assert counts.max() > 3 * counts[counts > 0].min()


def test_planted_s2_groups_and_clouds(demo: Path) -> None:
    bands = STORE.modality("s2").bands
    series = _series(demo, "s2")
    pixels, cloudy_dates = [], []
    for pid in _all_ids(demo):
        t = len(series[pid])
        s2 = _read(demo, pid, "s2").reshape(t, 10, 10, 10).astype(np.float64)
        mask = _read(demo, pid, "s2_mask").reshape(t, 2, 10, 10)
        assert not mask[:, 0].any()  # snow channel empty
        cloud = mask[:, 1] > 0
        assert mask[:, 1].max() <= 100
        cloudy_dates.append((cloud.any(axis=(1, 2)).sum(), t))
        if cloud.any():  # clouds brighten every band
            assert (
                s2.transpose(1, 0, 2, 3)[:, cloud].mean(1)
                > s2.transpose(1, 0, 2, 3)[:, ~cloud].mean(1)
            ).all()
        pixels.append(s2.transpose(0, 2, 3, 1)[~cloud])  # (N, 10) clear pixels
    for n_cloudy, t in cloudy_dates:
        assert n_cloudy == round(CFG.cloudy_fraction * t)
    corr = np.corrcoef(np.concatenate(pixels), rowvar=False)
    group = {b: g for g, members in enumerate(planted_groups("s2")) for b in members}
    same = np.array([[group[a] == group[b] for b in bands] for a in bands])
    off = ~np.eye(len(bands), dtype=bool)
    within, across = corr[same & off].mean(), corr[~same].mean()
    assert within > 0.9
    assert within > across + 0.2
