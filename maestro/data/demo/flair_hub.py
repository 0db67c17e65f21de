"""Demo FLAIR-HUB distribution (also the source of FLAIR#2), in the real on-disk format.

Layout (that of IGNF/FLAIR-HUB; read back by :mod:`maestro.data.readers.flair_hub`)::

    <DOMAIN>-<YEAR>_<TOKEN>/<ROI>/<DOMAIN>-<YEAR>_<TOKEN>_<ROI>_<row>-<col>.tif
    GLOBAL_ALL_MTD/GLOBAL_{AERIAL,SENTINEL2,SENTINEL1-ASC,SENTINEL1-DESC}_MTD_DATES.gpkg
    {train,val,test}.csv and {train,val,test}_flair2.csv        (column patch_id)

GeoTIFFs (EPSG:2154, every modality of a patch on the same footprint of ``tile_m``):
AERIAL_RGBI 4 x uint8 (R, G, B, NIR); DEM_ELEV 2 x float32 (DSM, DTM, metres);
SENTINEL2_TS T*10 x uint16 (reflectance x 10^4, date-major); SENTINEL2_MSK-SC T*2 x uint8
(snow, cloud probability 0-100); SENTINEL1-{ASC,DESC}_TS T*2 x float32 (linear VV, VH
backscatter); AERIAL_LABEL-COSIA 1 x uint8 (raw CoSIA 0-18). Pixel sizes come from the
StoreSpec (the demo config may coarsen aerial / DEM, e.g. 0.8 m -> 128 px).

Geography: train and val patches come from the real toy split's train domains, test
patches from its (different) test domains. Each domain holds ROIs named like ``FF-S1-14``
with ~4 patches each at distinct ``<row>-<col>`` positions. All patches of an ROI share
the aerial flight date (the first ROI of each domain, then every fourth, has an unknown
day written as ``00``) and the Sentinel acquisition dates; the Sentinel tables still
carry one row per patch with its full ``patch_id``. An ROI has between ``a`` and
``a + a // 4`` acquisitions per Sentinel sensor, ``a = cfg.acquisitions[modality]``.

Planted structure (all from ``np.random.default_rng(cfg.seed)``, see
:mod:`maestro.data.demo.world`):

- **Land cover**: Voronoi parcels (``cfg.parcels`` cells) on the label grid, classes drawn
  with the unequal frequencies of :data:`CLASS_WEIGHTS` (ignored classes 15-18 rare).
- **Aerial**: class levels of the world latent groups of ``"aerial"`` ({R,G,B} / {NIR})
  at the flight date, plus a shared within-group field and per-band noise.
- **DEM**: DTM = ROI base elevation + smooth terrain + a planar slope; DSM = DTM + a
  class-dependent object height (:data:`OBJECT_HEIGHT_M`: buildings ~9 m, deciduous
  ~16 m, coniferous ~20 m, ... modulated per pixel by +-25 %).
- **Sentinel-2**: area-weighted class fractions x class phenology (twin classes differ
  only by their peak date) over the S2 latent groups {B2-B5} / {B6-B8A} / {B11,B12};
  ``round(cloudy_fraction * T)`` dates per patch carry a cloud field that brightens
  every band, and the cloud-probability channel is > 0 exactly on those pixels (the snow
  channel is 0).
- **Sentinel-1**: phenology of the S1 latent groups {VV} / {VH} mapped to -22..-7 dB
  (VH 7 dB lower, descending orbit 0.5 dB lower), then Gamma speckle (5 looks).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
from rasterio.transform import Affine
from shapely.geometry import box

from maestro.data.dates import parse_yyyymmdd, to_yyyymmdd
from maestro.data.demo import DemoConfig
from maestro.data.demo import world as W
from maestro.data.readers.flair_hub import dates_table, patch_path, split_csv
from maestro.datasets.flair_hub import COSIA_NAMES, FOLDER_TOKENS
from maestro.datasets.spec import SPLITS, ModalitySpec, StoreSpec
from maestro.utils.atomic import atomic_path

__all__ = ["CLASS_WEIGHTS", "OBJECT_HEIGHT_M", "patch_path", "write"]

#: Domain-years of the real toy split: train/val domains, then (different) test domains.
TRAINVAL_DOMAINS = ("D006-2020", "D032-2019", "D038-2021", "D044-2020", "D051-2019")
TEST_DOMAINS = ("D012-2019", "D068-2021", "D069-2020", "D083-2020", "D085-2019")
#: Relative frequency of each raw CoSIA class (index = raw value).
CLASS_WEIGHTS = np.array(
    [8, 1, 1, 8, 6, 3, 4, 0.5, 16, 14, 6, 3, 13, 7, 5, 0.8, 0.8, 0.8, 0.4], dtype=np.float64
)
#: Mean height above ground (m) of each CoSIA class in the DSM.
OBJECT_HEIGHT_M = np.array(
    [9, 3, 0, 0, 0.3, 0, 0, 0, 0.3, 0.5, 0, 1.5, 16, 20, 2.5, 0.5, 6, 14, 0], dtype=np.float64
)
PATCHES_PER_ROI = 4
PATCHES_PER_DOMAIN = 40
ROI_SPACING_M = 5000.0  # ROIs hold at most 25 x 25 patches (2.56 km) so never overlap
S1_DB_RANGE = (-22.0, 15.0)  # dB = offset + span * level
S1_BAND_OFFSET_DB = {"VV": 0.0, "VH": -7.0}
S1_ORBIT_OFFSET_DB = {"s1_asc": 0.0, "s1_des": -0.5}
#: S2 within-group field std and per-band noise std (reflectance), and the field's
#: correlation length in S2 pixels (30 m): as on PASTIS-HD. With 2-pixel (20 m) tokens a
#: field varying inside a token, or per-band noise above the class spectral shape, leaves the
#: normalized targets without class information (docs/demo.md, "The FLAIR world").
S2_FIELD_NOISE = (0.0025, 0.0025)
S2_FIELD_SCALE_PX = 3.0
FIXED_GPKG_DATE = "2000-01-01T00:00:00Z"  # gpkg_contents.last_change, for identical bytes


class _World:
    """World-level draws: class frequencies and per-class phenology of each sensor family."""

    def __init__(self, rng: np.random.Generator) -> None:
        k = len(COSIA_NAMES)
        self.probs = CLASS_WEIGHTS / CLASS_WEIGHTS.sum()  # (K,)
        groups = {s: len(W.planted_groups(s)) for s in ("aerial", "s2", "s1")}
        s2 = W.class_phenologies(k, groups["s2"], rng, sensor="s2")
        self.phen = {
            "aerial": W.class_phenologies(
                k, groups["aerial"], rng, sensor="aerial", spectral_std=W.VHR_SPECTRAL_STD
            ),
            "s2": s2,
            "s1": W.class_phenologies(k, groups["s1"], rng, sensor="s1", like=s2),
        }
        self.rows = W.Texture.draw(k, groups["aerial"], rng)
        self._levels: dict[tuple[str, str], np.ndarray] = {}

    def spectra(self, sensor: str, date: str, bands: tuple[str, ...]) -> np.ndarray:
        """``(K, C)`` class band-gain deviations of ``bands`` on a ``YYYYMMDD`` date."""
        return W.class_spectra(self.phen[sensor], parse_yyyymmdd(date)[1], bands)

    def levels(self, sensor: str, date: str) -> np.ndarray:
        """``(K, G)`` class levels of a sensor family's latent groups on a ``YYYYMMDD`` date."""
        key = (sensor, date)
        if key not in self._levels:
            self._levels[key] = W.class_levels(self.phen[sensor], parse_yyyymmdd(date)[1])
        return self._levels[key]


@dataclass(frozen=True)
class _Roi:
    domain: str
    name: str
    x0: float
    y0: float
    elevation_m: float
    aerial_date: str  # YYYYMMDD, day may be "00"
    series: dict[str, tuple[str, ...]]  # temporal modality -> YYYYMMDD dates


@dataclass(frozen=True)
class _Patch:
    patch_id: str
    roi: _Roi
    split: str
    bounds: tuple[float, float, float, float]  # minx, miny, maxx, maxy (EPSG:2154)


def _roi_names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct ROI names like ``FF-S1-14`` (land-use letters, stratum, number)."""
    numbers = rng.permutation(np.arange(1, max(100, n + 1)))[:n]
    letters = rng.choice(list("UAFN"), size=(n, 2))
    strata = rng.integers(1, 3, size=n)
    return [f"{a}{b}-S{s}-{num}" for (a, b), s, num in zip(letters, strata, numbers, strict=True)]


def _series_dates(year: int, a: int, rng: np.random.Generator) -> tuple[str, ...]:
    n = a + int(rng.integers(0, a // 4 + 1))
    return tuple(to_yyyymmdd(year, d) for d in W.acquisition_days(n, rng))


def _layout(store: StoreSpec, cfg: DemoConfig, rng: np.random.Generator) -> list[_Patch]:
    """Domains, ROIs, positions, dates and splits of every patch (train, val, test order)."""
    temporal = [m for m in store.modalities if m.temporal]
    groups = [
        (TRAINVAL_DOMAINS, rng.permutation(["train"] * cfg.n_train + ["val"] * cfg.n_val)),
        (TEST_DOMAINS, np.array(["test"] * cfg.n_test)),
    ]
    patches: list[_Patch] = []
    for domains, splits in groups:
        if not len(splits):
            continue
        n_dom = min(len(domains), math.ceil(len(splits) / PATCHES_PER_DOMAIN))
        per_domain = np.array_split(np.arange(len(splits)), n_dom)
        for domain, members in zip(domains, per_domain, strict=False):
            year = int(domain.split("-")[1])
            base = rng.integers(200, 1000) * 1000.0, rng.integers(6200, 7000) * 1000.0
            n_roi = math.ceil(len(members) / PATCHES_PER_ROI)
            rois = []
            for r, name in enumerate(_roi_names(n_roi, rng)):
                day = int(rng.integers(120, 271))
                date = to_yyyymmdd(year, day)
                if r % 4 == 0:
                    date = date[:6] + "00"
                series = {
                    m.name: _series_dates(year, cfg.acquisitions.get(m.name, m.num_dates), rng)
                    for m in temporal
                }
                rois.append(
                    _Roi(
                        domain,
                        name,
                        base[0] + r * ROI_SPACING_M,
                        base[1],
                        float(rng.uniform(20, 900)),
                        date,
                        series,
                    )
                )
            roi_of = rng.permutation(np.arange(len(members)) % n_roi)
            for r, roi in enumerate(rois):
                mine = members[roi_of == r]
                cells = rng.choice(25 * 25, size=len(mine), replace=False)
                for i, cell in zip(mine, cells, strict=True):
                    row, col = divmod(int(cell), 25)
                    t = store.tile_m
                    minx, maxy = roi.x0 + col * t, roi.y0 - row * t
                    bounds = tuple(round(v, 6) for v in (minx, maxy - t, minx + t, maxy))
                    pid = f"{domain}_{roi.name}_{row + 1}-{col + 1}"
                    patches.append(_Patch(pid, roi, str(splits[i]), bounds))
    order = {s: k for k, s in enumerate(SPLITS)}
    return sorted(patches, key=lambda p: (order[p.split], p.patch_id))


# --- rasters ------------------------------------------------------------------------------
def _aerial(
    world: _World,
    label: np.ndarray,
    cells: np.ndarray,
    date: str,
    spec: ModalitySpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(4, H, W)`` uint8 aerial image at the flight date (``cells``: parcel ids)."""
    levels = world.levels("aerial", date)
    frac = W.class_fractions(label, len(COSIA_NAMES), label.shape)
    groups = [W.LATENT_GROUPS["aerial"][b] for b in spec.bands]
    x = W.render_bands(
        frac, levels, groups, 0.03, 0.03, rng, label.shape[0] / 16,
        spectral=world.spectra("aerial", date, spec.bands),
        texture=world.rows.render(label, cells, spec.resolution_m, rng),
        group_gain=W.acquisition_gains((max(groups) + 1,), rng),
    )  # fmt: skip
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def _dem(label: np.ndarray, px: int, elevation: float, rng: np.random.Generator) -> np.ndarray:
    """``(2, px, px)`` float32 DSM, DTM in metres."""
    lab = W.upsample_labels(label, (px, px))
    yy, xx = np.mgrid[0:px, 0:px] / px
    slope = rng.uniform(-5.0, 5.0, size=2)  # metres over the tile
    dtm = elevation + 4.0 * W.smooth_field((px, px), px / 4, rng) + slope[0] * yy + slope[1] * xx
    height = OBJECT_HEIGHT_M[lab] * np.clip(
        1 + 0.25 * W.smooth_field((px, px), px / 32, rng), 0.3, 1.7
    )
    dsm = dtm + height + 0.02 * rng.standard_normal((px, px))
    return np.stack([dsm, dtm]).astype(np.float32)


def _s2(
    world: _World,
    frac: np.ndarray,
    dates: tuple[str, ...],
    bands: tuple[str, ...],
    cloudy_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``(T*10, h, w)`` uint16 reflectance and ``(T*2, h, w)`` uint8 snow/cloud mask."""
    t, px = len(dates), frac.shape[-1]
    groups = [W.LATENT_GROUPS["s2"][b] for b in bands]
    cloudy = set(rng.choice(t, size=round(cloudy_fraction * t), replace=False).tolist())
    images, masks = [], []
    for k, date in enumerate(dates):
        x = W.render_bands(
            frac, world.levels("s2", date), groups, *S2_FIELD_NOISE, rng, S2_FIELD_SCALE_PX,
            spectral=world.spectra("s2", date, bands),
            group_gain=W.acquisition_gains((max(groups) + 1,), rng),
        )  # fmt: skip
        prob = np.zeros((px, px), np.float32)
        if k in cloudy:
            prob = W.cloud_field((px, px), float(rng.uniform(0.15, 1.0)), rng, px / 6)
            alpha = np.where(prob > 0, 0.4 + 0.6 * prob / 100.0, 0.0)
            x = (1 - alpha) * x + alpha * 0.85
        images.append(np.clip(np.round(x * 10000), 1, 65535).astype(np.uint16))
        cloud = np.where(prob > 0, np.maximum(np.round(prob), 1), 0).astype(np.uint8)
        masks.append(np.stack([np.zeros_like(cloud), cloud]))
    return np.concatenate(images), np.concatenate(masks)


def _s1(
    world: _World,
    frac: np.ndarray,
    dates: tuple[str, ...],
    bands: tuple[str, ...],
    orbit: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(T*2, h, w)`` float32 linear backscatter with speckle."""
    groups = [W.LATENT_GROUPS["s1"][b] for b in bands]
    out = []
    for date in dates:
        levels = world.levels("s1", date)
        x = W.render_bands(frac, levels, groups, 0.03, 0.01, rng, frac.shape[-1] / 5)
        offset = np.array([S1_BAND_OFFSET_DB[b] for b in bands])[:, None, None]
        db = S1_DB_RANGE[0] + S1_DB_RANGE[1] * x + offset + S1_ORBIT_OFFSET_DB[orbit]
        out.append(W.speckle(10.0 ** (db / 10.0), 5.0, rng).astype(np.float32))
    return np.concatenate(out)


def _write_tif(path: Path, data: np.ndarray, bounds: tuple[float, ...], crs: str) -> None:
    """Write ``(bands, H, W)`` as a GeoTIFF covering ``bounds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count, h, w = data.shape
    res = (bounds[2] - bounds[0]) / w
    profile = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=count,
        dtype=data.dtype.name,
        crs=crs,
        transform=Affine(res, 0.0, bounds[0], 0.0, -res, bounds[3]),
        compress="lzw",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _write_patch(
    root: Path,
    store: StoreSpec,
    world: _World,
    patch: _Patch,
    cfg: DemoConfig,
    rng: np.random.Generator,
) -> None:
    grid = store.modality(store.label.grid_modality or "aerial")
    px = grid.pixels(store.tile_m)
    label, cells = W.parcels((px, px), cfg.parcels, world.probs, rng, return_cells=True)
    label = label.astype(np.uint8)
    arrays = {"label": label[None]}
    fracs: dict[int, np.ndarray] = {}
    for spec in store.modalities:
        mpx = spec.pixels(store.tile_m)
        if spec.temporal and mpx not in fracs:
            fracs[mpx] = W.class_fractions(label, len(COSIA_NAMES), (mpx, mpx))
        if spec.name == "aerial":
            arrays["aerial"] = _aerial(
                world, W.upsample_labels(label, (mpx, mpx)), W.upsample_labels(cells, (mpx, mpx)),
                patch.roi.aerial_date, spec, rng,
            )  # fmt: skip
        elif spec.name == "dem":
            arrays["dem"] = _dem(label, mpx, patch.roi.elevation_m, rng)
        elif spec.name == "s2":
            arrays["s2"], arrays["s2_mask"] = _s2(
                world, fracs[mpx], patch.roi.series["s2"], spec.bands, cfg.cloudy_fraction, rng
            )
        elif spec.name in S1_ORBIT_OFFSET_DB:
            arrays[spec.name] = _s1(
                world, fracs[mpx], patch.roi.series[spec.name], spec.bands, spec.name, rng
            )
        else:
            raise ValueError(f"FLAIR-HUB demo: no generator for modality {spec.name!r}")
    for key, data in arrays.items():
        _write_tif(
            root / patch_path(patch.patch_id, FOLDER_TOKENS[key]), data, patch.bounds, store.crs
        )


# --- metadata -----------------------------------------------------------------------------
def _write_gpkg(path: Path, columns: dict[str, list[str]], patches: list[_Patch], crs: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    geometry = [box(*p.bounds) for p in patches]
    frame = gpd.GeoDataFrame(columns, geometry=geometry, crs=crs)
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        frame.to_file(path, driver="GPKG", engine="pyogrio", layer=path.stem)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def _write_metadata(root: Path, store: StoreSpec, patches: list[_Patch]) -> None:
    ids = [p.patch_id for p in patches]
    ref_token = FOLDER_TOKENS[store.label.grid_modality or "aerial"]
    _write_gpkg(
        root / dates_table(ref_token),
        {"patch_id": ids, "date": [p.roi.aerial_date for p in patches]},
        patches,
        store.crs,
    )
    for spec in store.modalities:
        if not spec.temporal:
            continue
        cells = [
            json.dumps({str(k + 1): d for k, d in enumerate(p.roi.series[spec.name])})
            for p in patches
        ]
        table = root / dates_table(FOLDER_TOKENS[spec.name])
        _write_gpkg(table, {"patch_id": ids, "acquisition_dates": cells}, patches, store.crs)


def _write_splits(
    root: Path, patches: list[_Patch], fraction: float, rng: np.random.Generator
) -> None:
    for split in SPLITS:
        ids = [p.patch_id for p in patches if p.split == split]
        n_sub = min(len(ids), max(1, round(fraction * len(ids)))) if ids and fraction > 0 else 0
        keep = np.sort(rng.choice(len(ids), size=n_sub, replace=False)) if n_sub else []
        for scheme, chosen in (("default", ids), ("flair2", [ids[i] for i in keep])):
            frame = pd.DataFrame({"patch_id": pd.Series(chosen, dtype=str)})
            frame.to_csv(root / split_csv(scheme, split), index=False, lineterminator="\n")


def write(root: Path, store: StoreSpec, cfg: DemoConfig) -> None:
    """Write a demo FLAIR-HUB distribution under ``root`` (atomically: temp dir, then rename)."""
    rng = np.random.default_rng(cfg.seed)
    world = _World(rng)
    patches = _layout(store, cfg, rng)
    with atomic_path(root) as tmp:
        tmp.mkdir(parents=True)
        for patch in patches:
            _write_patch(tmp, store, world, patch, cfg, rng)
        _write_metadata(tmp, store, patches)
        _write_splits(tmp, patches, cfg.flair2_fraction, rng)
