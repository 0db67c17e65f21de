"""Demo PASTIS-HD distribution, written in the real on-disk format (that of IGNF/PASTIS-HD).

Files (``<id>`` = integer patch id from 10000; H = W = S2 pixels of the StoreSpec tile,
Hs = Ws = SPOT pixels; 128 / 1280 for the real 1280 m tile, 32 / 320 for a 320 m demo tile)::

    DATA_S2/S2_<id>.npy               (T, 10, H, W) int16, L2A reflectance x 1e4
    DATA_S1A/S1A_<id>.npy             (T, 3, H, W) float16 dB: VV, VH, VV/VH
    DATA_S1D/S1D_<id>.npy             same, descending orbit
    DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019/SPOT6_RVB_1M00_2019_<id>.tif
                                      3-band RGB uint8 GeoTIFF, EPSG:2154, SPOT resolution
    ANNOTATIONS/TARGET_<id>.npy       (3, H, W) uint8
    metadata.geojson                  FeatureCollection (Lambert-93 footprints, no "crs")
    train.csv, val.csv, test.csv      column ``image``
    NORM_S2_patch.json, NORM_S1A_patch.json, NORM_S1D_patch.json   per-fold mean / std
    documentation/label_names.json    {"0": "Background", ..., "19": "Void label"}

Conventions chosen where the real format is not documented:

- S1 channel 2 ("VV/VH") is the ratio in dB, ``VV_dB - VH_dB`` (= 10 log10(VV/VH)); MAESTRO
  ignores it.
- TARGET channel 0 is the semantic class (0 background, 1-18 crops, 19 void). Channel 1 is
  the majority class of the pixel without void; channel 2 is 1 where the S2 pixel straddles
  a parcel border, else 0. Void marks the border pixels of a random 30 % of the parcels.
- Folds follow the usual PASTIS protocol: train patches get folds 1-3, val 4, test 5.
- The INSTANCE_ANNOTATIONS folder (unused by MAESTRO) is not written.

Planted structure (all from ``np.random.default_rng(cfg.seed)``, see ``world.py``):

- **Parcels.** Per patch, a Voronoi tessellation with ``cfg.parcels`` cells at the SPOT
  grid; each cell gets class 0 (background, 30 % of the cells) or a crop 1..18 with
  probability proportional to c**-0.5 (Meadow most frequent, Sorghum rarest). S2 / S1 see
  the area fractions of each class in their coarser pixels.
- **Twin phenology.** Crops (1, 2), (3, 4), ..., (17, 18) are twins: same base level and
  seasonal amplitude per latent band group, peaks ~120 days apart. A single date can
  hardly separate them; the S2 / S1 series can. S2 has latent groups {B2-B5}, {B6-B8A},
  {B11, B12}, S1 {VV}, {VH}, SPOT one group {R, G, B}; each sensor has its own signatures.
- **Dates.** Every series spans 2018-09-15 .. 2019-12-31 with ``cfg.acquisitions`` per
  year; patches of one S2 tile (TILE) share the dates of that tile and drop up to two of
  them, so the date count varies a little per patch. SPOT is one summer mosaic (the
  store's ``ref_date``).
- **Clouds.** A share ``cfg.cloudy_fraction`` of S2 dates is partly clouded (bright in
  every band); PASTIS has no cloud mask, so none is written.
- **S1.** Backscatter in dB from the S1 latent levels, with Gamma speckle (5 looks).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from scipy import ndimage

from maestro.data.dates import parse_yyyymmdd
from maestro.data.demo import DemoConfig
from maestro.data.demo import world as w
from maestro.data.readers.pastis_hd import (
    METADATA,
    SERIES,
    SPOT_DIR,
    series_path,
    spot_path,
    target_path,
)
from maestro.datasets.pastis_hd import SPOT_DATE, VOID
from maestro.datasets.spec import SPLITS, StoreSpec
from maestro.utils.atomic import atomic_path

FIRST_PATCH_ID = 10000
SPAN = (dt.date(2018, 9, 15), dt.date(2019, 12, 31))
#: The S2 tiles of PASTIS and a Lambert-93 origin (m) for the patches of each.
S2_TILES = {
    "t30uxv": (380_000.0, 6_780_000.0),
    "t31tfj": (840_000.0, 6_330_000.0),
    "t31tfm": (800_000.0, 6_590_000.0),
    "t32ulu": (960_000.0, 6_800_000.0),
}
FOLDS = {"train": (1, 2, 3), "val": (4,), "test": (5,)}
N_DRAWN = 19  # classes drawn into parcels: background + 18 crops (never void)
BACKGROUND_SHARE = 0.3
VOID_PARCEL_SHARE = 0.3
S1_LOOKS = 5.0
MAX_DROPPED_DATES = 2


@dataclass(frozen=True)
class _Signatures:
    """Class frequencies, per-sensor class phenologies and SPOT rows, in label order 0..18."""

    class_probs: np.ndarray  # (19,)
    s2: list[w.Phenology]
    s1: list[w.Phenology]
    spot: list[w.Phenology]
    rows: w.Texture

    @staticmethod
    def draw(rng: np.random.Generator) -> _Signatures:
        crops = 1.0 / np.sqrt(np.arange(1, N_DRAWN))
        probs = np.concatenate([[BACKGROUND_SHARE], (1 - BACKGROUND_SHARE) * crops / crops.sum()])

        def label_order(phen: list) -> list:
            # world twins are (2k, 2k+1); crop c uses phenology c-1, so twins are (1,2), (3,4)...
            return [phen[N_DRAWN - 1], *phen[: N_DRAWN - 1]]

        n_groups = {s: len(w.planted_groups(s)) for s in ("s2", "s1", "spot")}
        s2 = w.class_phenologies(N_DRAWN, n_groups["s2"], rng, sensor="s2")
        s1 = w.class_phenologies(N_DRAWN, n_groups["s1"], rng, sensor="s1", like=s2)
        spot = w.class_phenologies(
            N_DRAWN, n_groups["spot"], rng, sensor="spot", spectral_std=w.VHR_SPECTRAL_STD
        )
        rows = w.Texture.draw(N_DRAWN, n_groups["spot"], rng)
        rows = w.Texture(
            *(np.asarray(label_order(list(a))) for a in (rows.period_m, rows.angle, rows.amplitude))
        )
        return _Signatures(probs, label_order(s2), label_order(s1), label_order(spot), rows)


@dataclass(frozen=True)
class _Patch:
    pid: int
    split: str
    fold: int
    tile: str
    minx: float
    miny: float
    dates: dict[str, list[dt.date]]  # temporal modality -> sorted acquisition dates


def _series_dates(per_year: int, jitter_days: float, rng: np.random.Generator) -> list[dt.date]:
    """Roughly regular acquisition dates over :data:`SPAN` (``per_year`` a year)."""
    span_days = (SPAN[1] - SPAN[0]).days
    n = max(1, round(per_year * span_days / 365.25))
    offsets = np.linspace(0, span_days, n, endpoint=False) + span_days / (2 * n)
    offsets = np.clip(np.round(offsets + rng.uniform(-jitter_days, jitter_days, n)), 0, span_days)
    return [SPAN[0] + dt.timedelta(days=int(d)) for d in np.unique(offsets)]


def _layout(store: StoreSpec, cfg: DemoConfig, rng: np.random.Generator) -> list[_Patch]:
    """Patch ids, splits, folds, S2 tiles, footprints and dates."""
    missing = [m for m in SERIES if m not in cfg.acquisitions]
    if missing:
        raise ValueError(f"demo config for pastis_hd needs acquisitions for {missing}")
    counts = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    n = sum(counts.values())
    splits = rng.permutation(np.repeat(list(SPLITS), [counts[s] for s in SPLITS]))
    gaps = np.concatenate([[0], rng.integers(1, 4, max(n - 1, 0))])
    ids = FIRST_PATCH_ID + np.cumsum(gaps)
    tiles = rng.choice(list(S2_TILES), size=n)
    tile_dates = {
        t: {m: _series_dates(cfg.acquisitions[m], 4.0 if m == "s2" else 1.0, rng) for m in SERIES}
        for t in S2_TILES
    }
    side = 64  # patches are placed on a side x side grid of tile footprints per S2 tile
    cells = {t: iter(rng.choice(side * side, size=side * side, replace=False)) for t in S2_TILES}
    patches = []
    for pid, split, tile in zip(ids, splits, tiles, strict=True):
        cell = int(next(cells[tile]))
        ox, oy = S2_TILES[tile]
        dates = {}
        for m, full in tile_dates[tile].items():
            n_drop = int(rng.integers(0, min(MAX_DROPPED_DATES, len(full) - 1) + 1))
            drop = set(rng.choice(len(full), size=n_drop, replace=False).tolist())
            dates[m] = [d for i, d in enumerate(full) if i not in drop]
        patches.append(
            _Patch(
                pid=int(pid),
                split=str(split),
                fold=int(rng.choice(FOLDS[str(split)])),
                tile=str(tile),
                minx=ox + (cell % side) * store.tile_m,
                miny=oy + (cell // side) * store.tile_m,
                dates=dates,
            )
        )
    return patches


def _levels(phen: list[w.Phenology], d: dt.date) -> np.ndarray:
    """``(19, G)`` class levels at the day of year of ``d``."""
    return w.class_levels(phen, d.timetuple().tm_yday)


def _render_s2(
    fr: np.ndarray,
    dates: list[dt.date],
    sig: _Signatures,
    store: StoreSpec,
    cfg: DemoConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(T, C, H, W)`` int16 reflectance x 1e4 from class fractions ``fr`` ``(19, H, W)``."""
    bands = store.modality("s2").bands
    groups = [w.LATENT_GROUPS["s2"][b] for b in bands]
    out = np.empty((len(dates), len(groups), *fr.shape[1:]), dtype=np.int16)
    n_groups = max(groups) + 1
    for t, d in enumerate(dates):
        doy = d.timetuple().tm_yday
        v = 0.6 * w.render_bands(
            fr, _levels(sig.s2, d), groups, 0.005, 0.005, rng,
            spectral=w.class_spectra(sig.s2, doy, bands),
            group_gain=w.acquisition_gains((n_groups,), rng),
        )  # fmt: skip
        if rng.random() < cfg.cloudy_fraction:
            cloud = w.cloud_field(fr.shape[1:], float(rng.uniform(0.1, 0.7)), rng) / 100.0
            v = v * (1.0 - cloud) + 0.8 * cloud
        out[t] = np.clip(np.rint(v * 1e4), 0, np.iinfo(np.int16).max)
    return out


def _render_s1(
    fr: np.ndarray,
    dates: list[dt.date],
    sig: _Signatures,
    store: StoreSpec,
    name: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(T, 3, H, W)`` float16 dB backscatter: VV, VH, VV/VH (= VV_dB - VH_dB)."""
    bands = store.modality(name).bands
    if bands[:2] != ("VV", "VH") or len(bands) != 3:
        raise ValueError(f"PASTIS S1 bands must be (VV, VH, ratio), found {bands}")
    groups = [w.LATENT_GROUPS["s1"][b] for b in bands[:2]]
    out = np.empty((len(dates), 3, *fr.shape[1:]), dtype=np.float16)
    for t, d in enumerate(dates):
        v = w.render_bands(fr, _levels(sig.s1, d), groups, 0.03, 0.01, rng)
        db = np.stack([-21.0 + 14.0 * v[0], -28.0 + 14.0 * v[1]])
        linear = w.speckle(10.0 ** (db / 10.0), S1_LOOKS, rng)
        db = 10.0 * np.log10(np.maximum(linear, 1e-6))
        out[t] = np.concatenate([db, db[:1] - db[1:]])
    return out


def _render_spot(
    label: np.ndarray,
    cells: np.ndarray,
    scale: int,
    sig: _Signatures,
    store: StoreSpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(3, Hs, Ws)`` uint8 RGB of the summer mosaic from the SPOT-grid class map."""
    _, doy, _ = parse_yyyymmdd(store.ref_date or SPOT_DATE)
    spec = store.modality("spot")
    groups = [w.LATENT_GROUPS["spot"][b] for b in spec.bands]
    onehot = w.class_fractions(label, N_DRAWN, label.shape)
    v = w.render_bands(
        onehot, w.class_levels(sig.spot, doy), groups, 0.03, 0.02, rng, 3.0 * scale,
        spectral=w.class_spectra(sig.spot, doy, spec.bands),
        texture=sig.rows.render(label, cells, spec.resolution_m, rng),
        group_gain=w.acquisition_gains((max(groups) + 1,), rng),
    )  # fmt: skip
    return np.clip(np.rint(20.0 + 260.0 * v), 0, 255).astype(np.uint8)


def _target(label: np.ndarray, h: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``(3, h, h)`` uint8 TARGET from the SPOT-grid class map, and the parcel count."""
    parcels = np.zeros(label.shape, dtype=np.int64)
    n_parcels = 0
    for c in range(1, N_DRAWN):
        comp, k = ndimage.label(label == c)
        parcels[comp > 0] = comp[comp > 0] + n_parcels
        n_parcels += k
    f = label.shape[0] // h
    blocks = parcels.reshape(h, f, h, f)
    border = blocks.min(axis=(1, 3)) != blocks.max(axis=(1, 3))
    voided = np.flatnonzero(rng.random(n_parcels + 1) < VOID_PARCEL_SHARE)
    voided = voided[voided > 0]
    touches_void = np.isin(blocks, voided).any(axis=(1, 3))
    majority = w.class_fractions(label, N_DRAWN, (h, h)).argmax(axis=0)
    semantic = np.where(border & touches_void, VOID, majority)
    out = np.stack([semantic, majority, border]).astype(np.uint8)
    return out, n_parcels


def _write_spot(path: Path, rgb: np.ndarray, patch: _Patch, res: float, crs: str) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": rgb.shape[0],
        "height": rgb.shape[1],
        "width": rgb.shape[2],
        "crs": crs,
        "transform": Affine(res, 0.0, patch.minx, 0.0, -res, patch.miny + rgb.shape[1] * res),
        "photometric": "RGB",
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)


def _feature(patch: _Patch, tile_m: float, n_parcels: int, cover: float) -> dict:
    x0, y0, x1, y1 = patch.minx, patch.miny, patch.minx + tile_m, patch.miny + tile_m
    props: dict[str, object] = {
        "Fold": patch.fold,
        "ID_PATCH": patch.pid,
        "N_Parcel": n_parcels,
        "Parcel_Cover": round(cover, 6),
        "TILE": patch.tile,
    }
    for m, (_, _, key) in SERIES.items():
        props[key] = {str(i): int(d.strftime("%Y%m%d")) for i, d in enumerate(patch.dates[m])}
    props["id"] = str(patch.pid)
    ring = [[x0, y0], [x0, y1], [x1, y1], [x1, y0], [x0, y0]]
    geometry = {"type": "MultiPolygon", "coordinates": [[ring]]}
    return {"type": "Feature", "id": str(patch.pid), "properties": props, "geometry": geometry}


class _FoldStats:
    """Running per-fold, per-channel mean / std of a series (for ``NORM_<sat>_patch.json``)."""

    def __init__(self) -> None:
        self.acc: dict[int, np.ndarray] = {}  # fold -> (3, C): count, sum, sum of squares

    def add(self, fold: int, x: np.ndarray) -> None:
        x = x.astype(np.float64)
        stats = np.stack(
            [
                np.full(x.shape[1], x.size / x.shape[1]),
                x.sum(axis=(0, 2, 3)),
                (x**2).sum(axis=(0, 2, 3)),
            ]
        )
        self.acc[fold] = self.acc.get(fold, 0) + stats

    def to_json(self) -> dict[str, dict[str, list[float]]]:
        out = {}
        for fold in sorted(self.acc):
            n, s, s2 = self.acc[fold]
            mean = s / n
            std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
            out[f"Fold_{fold}"] = {"mean": mean.round(4).tolist(), "std": std.round(4).tolist()}
        return out


def _write_patch(
    root: Path,
    patch: _Patch,
    store: StoreSpec,
    cfg: DemoConfig,
    sig: _Signatures,
    stats: dict[str, _FoldStats],
    rng: np.random.Generator,
) -> dict:
    """Write the rasters and TARGET of one patch; return its metadata feature."""
    pid = str(patch.pid)
    h = store.modality("s2").pixels(store.tile_m)
    spot = store.modality("spot")
    hs = spot.pixels(store.tile_m)
    label, cells = w.parcels((hs, hs), cfg.parcels, sig.class_probs, rng, return_cells=True)
    fr = w.class_fractions(label, N_DRAWN, (h, h))  # (19, H, W)
    target, n_parcels = _target(label, h, rng)
    np.save(target_path(root, pid), target)
    series = {"s2": _render_s2(fr, patch.dates["s2"], sig, store, cfg, rng)}
    for m in ("s1_asc", "s1_des"):
        series[m] = _render_s1(fr, patch.dates[m], sig, store, m, rng)
    for m, arr in series.items():
        np.save(series_path(root, m, pid), arr)
        stats[m].add(patch.fold, arr)
    rgb = _render_spot(label, cells, hs // h, sig, store, rng)
    _write_spot(spot_path(root, pid), rgb, patch, spot.resolution_m, store.crs)
    return _feature(patch, store.tile_m, n_parcels, float((label > 0).mean()))


def write(root: Path, store: StoreSpec, cfg: DemoConfig) -> None:
    """Write the demo PASTIS-HD distribution under ``root`` (created; must not exist).

    Sizes come from ``store`` (e.g. a 320 m tile: S2 / S1 / TARGET 32 px, SPOT 320 px).
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root}: the demo dataset directory already exists")
    h = store.modality("s2").pixels(store.tile_m)
    for m in store.modalities:
        px = m.pixels(store.tile_m)
        if (m.name in SERIES and px != h) or px % h:
            raise ValueError(f"{m.name}: {px} px per tile does not fit the S2 grid of {h} px")
    rng = np.random.default_rng(cfg.seed)
    sig = _Signatures.draw(rng)
    patches = _layout(store, cfg, rng)
    stats = {m: _FoldStats() for m in SERIES}
    with atomic_path(root) as tmp:
        folders = [f for f, _, _ in SERIES.values()] + [SPOT_DIR, "ANNOTATIONS", "documentation"]
        for folder in folders:
            (tmp / folder).mkdir(parents=True)
        features = [_write_patch(tmp, p, store, cfg, sig, stats, rng) for p in patches]
        collection = {"type": "FeatureCollection", "name": "metadata", "features": features}
        (tmp / METADATA).write_text(json.dumps(collection) + "\n")
        for split in SPLITS:
            rows = [str(p.pid) for p in patches if p.split == split]
            (tmp / f"{split}.csv").write_text("\n".join(["image", *rows]) + "\n")
        for m, (_, prefix, _) in SERIES.items():
            (tmp / f"NORM_{prefix}_patch.json").write_text(json.dumps(stats[m].to_json()) + "\n")
        names = {str(i): n for i, n in enumerate(store.label.names)}
        (tmp / "documentation" / "label_names.json").write_text(json.dumps(names, indent=2) + "\n")
