"""Demo S2-NAIP urban distribution, in the layout of :mod:`maestro.data.readers.s2_naip`.

Files (every path from the reader's helpers)::

    naip/<name>.png  sentinel2/<name>_stacked.tif  sentinel1/<name>.tif
    dates/{naip,s2,s1}/<name>.txt  {train,val,test}.csv (column name)

Geography: tiles lie within ~5 km of the centre of US cities in different UTM zones
(:data:`CITIES`, one per zone), named by their allenai tile id ``<epsg>_<col>_<row>`` on a grid of
``store.tile_m``. The S2 and S1 GeoTIFFs carry the tile's UTM CRS (EPSG:326xx) and exactly
the footprint of the name; the PNG (no CRS) covers the same footprint at NAIP resolution.
Pixel sizes come from the StoreSpec (the demo config may coarsen NAIP).

Dates: each tile has one NAIP flight in June-September of 2019-2021 and S2 / S1 series
spread over that calendar year, ``a`` to ``a + a // 4`` acquisitions with
``a = cfg.acquisitions[modality]`` (default: the modality's ``num_dates``). Product names
follow the real conventions (``m_<quad>_<quadrant>_<zone>_060_<YYYYMMDD>``,
``S2A_MSIL1C_<start>_N0208_R<orbit>_T<mgrs>_<discriminator>``,
``S1A_IW_GRDH_1SDV_<start>_<stop>_<orbit>_<datatake>_<id>``), so their date tokens are the
ones MAESTRO parses.

Planted structure (all from ``np.random.default_rng(cfg.seed)``; see
:mod:`maestro.data.demo.world`):

- **Land cover**: Voronoi parcels (``cfg.parcels`` cells) on the finest grid with urban
  (building, road, impervious, bare soil) and vegetation / water classes
  (:data:`CLASSES`, frequencies :data:`CLASS_WEIGHTS`). Urban surfaces barely change over
  the year; vegetation follows its phenology (:data:`SEASONALITY` damps the world's
  seasonal amplitude per class). Coarser pixels see area-weighted class fractions.
- **NAIP**: the world latent groups of ``"aerial"`` ({R,G,B} / {NIR}) at the flight date.
- **Sentinel-2**: the S2 latent groups {B2-B5} / {B6-B8A} / {B11,B12} at each date,
  reflectance x 10^4 as uint16. No clouds: the store has no cloud mask, so
  ``cfg.cloudy_fraction`` is not used.
- **Sentinel-1**: the latent groups {VV} / {VH} mapped to -22..-7 dB (VH 7 dB lower), Gamma
  speckle (5 looks) on the linear power, stored back in dB (float32).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform

from maestro.data.dates import to_yyyymmdd
from maestro.data.demo import DemoConfig
from maestro.data.demo import world as W
from maestro.data.readers.s2_naip import (
    dates_path,
    raster_path,
    split_csv,
    tile_bounds,
    tile_name,
)
from maestro.datasets.spec import SPLITS, ModalitySpec, StoreSpec
from maestro.utils.atomic import atomic_path

__all__ = ["CITIES", "CLASSES", "CLASS_WEIGHTS", "SEASONALITY", "write"]

#: City centres (name, longitude, latitude), each in its own UTM zone (10N to 19N).
CITIES = (
    ("Seattle", -122.33, 47.61),
    ("Los Angeles", -118.24, 34.05),
    ("Phoenix", -112.07, 33.45),
    ("Denver", -104.99, 39.74),
    ("Dallas", -96.80, 32.78),
    ("Houston", -95.37, 29.76),
    ("Chicago", -87.63, 41.88),
    ("Detroit", -83.05, 42.33),
    ("New York", -74.01, 40.71),
    ("Boston", -71.06, 42.36),
)
CLASSES = ("building", "road", "impervious", "bare_soil", "lawn", "deciduous", "evergreen", "water")
CLASS_WEIGHTS = np.array([24, 18, 14, 4, 14, 14, 7, 5], dtype=np.float64)
#: Factor on each class's seasonal amplitude (urban surfaces ~constant over the year).
SEASONALITY = np.array([0.05, 0.05, 0.1, 0.3, 1.0, 1.0, 0.3, 0.2])
MAX_OFFSET_TILES = 7  # tiles within ~4.5 km (640 m tiles) of the city centre
NAIP_DOY = (152, 273)  # June to September
S1_DB_RANGE = (-22.0, 15.0)  # dB = offset + span * level
S1_BAND_OFFSET_DB = {"VV": 0.0, "VH": -7.0}
LAT_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # MGRS latitude bands, 8 degrees each from 80 S


class _World:
    """Class frequencies and per-class phenology of each sensor family."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.probs = CLASS_WEIGHTS / CLASS_WEIGHTS.sum()
        self.phen = {}
        for sensor in ("aerial", "s2", "s1"):
            phen = W.class_phenologies(
                len(CLASSES), len(W.planted_groups(sensor)), rng, sensor=sensor,
                spectral_std=W.VHR_SPECTRAL_STD if sensor == "aerial" else W.SPECTRAL_STD,
                like=self.phen.get("s2") if sensor == "s1" else None,
            )  # fmt: skip
            self.phen[sensor] = [
                dataclasses.replace(p, amplitude=p.amplitude * f)
                for p, f in zip(phen, SEASONALITY, strict=True)
            ]
        self.rows = W.Texture.draw(len(CLASSES), len(W.planted_groups("aerial")), rng)

    def levels(self, sensor: str, doy: int) -> np.ndarray:
        """``(K, G)`` class levels of a sensor family's latent groups on a day of year."""
        return W.class_levels(self.phen[sensor], doy)

    def spectra(self, sensor: str, doy: int, bands: tuple[str, ...]) -> np.ndarray:
        """``(K, C)`` class band-gain deviations of ``bands`` on a day of year."""
        return W.class_spectra(self.phen[sensor], doy, bands)


@dataclass(frozen=True)
class _Tile:
    name: str
    split: str
    epsg: int
    lon: float
    lat: float
    year: int
    naip_doy: int
    series: dict[str, np.ndarray]  # temporal modality -> sorted days of year


def _utm_epsg(lon: float) -> int:
    return 32600 + int((lon + 180.0) // 6.0) + 1


def _layout(store: StoreSpec, cfg: DemoConfig, rng: np.random.Generator) -> list[_Tile]:
    """Names, cities, dates and splits of every tile (sorted by split, then name)."""
    n = cfg.n_train + cfg.n_val + cfg.n_test
    splits = rng.permutation(["train"] * cfg.n_train + ["val"] * cfg.n_val + ["test"] * cfg.n_test)
    city_order = rng.permutation(len(CITIES))
    per_city = np.bincount(np.arange(n) % len(CITIES), minlength=len(CITIES))
    side = 2 * MAX_OFFSET_TILES + 1
    temporal = [m for m in store.stored_modalities if m.temporal]
    tiles: list[_Tile] = []
    for slot, count in enumerate(per_city):
        if not count:
            continue
        _, lon, lat = CITIES[int(city_order[slot])]
        epsg = _utm_epsg(lon)
        xs, ys = warp_transform("EPSG:4326", f"EPSG:{epsg}", [lon], [lat])
        col0, row0 = math.floor(xs[0] / store.tile_m), math.floor(-ys[0] / store.tile_m)
        for cell in rng.choice(side * side, size=count, replace=False):
            dr, dc = divmod(int(cell), side)
            name = tile_name(epsg, col0 + dc - MAX_OFFSET_TILES, row0 + dr - MAX_OFFSET_TILES)
            series = {}
            for m in temporal:
                a = cfg.acquisitions.get(m.name, m.num_dates)
                series[m.name] = W.acquisition_days(a + int(rng.integers(0, a // 4 + 1)), rng)
            year, doy = int(rng.integers(2019, 2022)), int(rng.integers(*NAIP_DOY))
            tiles.append(_Tile(name, "", epsg, lon, lat, year, doy, series))
    tiles = [dataclasses.replace(t, split=str(s)) for t, s in zip(tiles, splits, strict=True)]
    order = {s: k for k, s in enumerate(SPLITS)}
    return sorted(tiles, key=lambda t: (order[t.split], t.name))


# --- product names ------------------------------------------------------------------------
def _naip_product(tile: _Tile, rng: np.random.Generator) -> str:
    quad = f"{int(tile.lat):02d}{int(-tile.lon):03d}{int(rng.integers(1, 65)):02d}"
    quadrant = ("ne", "nw", "se", "sw")[int(rng.integers(0, 4))]
    date = to_yyyymmdd(tile.year, tile.naip_doy)
    return f"m_{quad}_{quadrant}_{tile.epsg - 32600}_060_{date}"


def _s2_products(tile: _Tile, days: np.ndarray, rng: np.random.Generator) -> list[str]:
    band = LAT_BANDS[int((tile.lat + 80.0) // 8.0)]
    square = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ"), size=2))
    mgrs, orbit = f"T{tile.epsg - 32600}{band}{square}", int(rng.integers(1, 144))
    out = []
    for day in days:
        date = to_yyyymmdd(tile.year, int(day))
        sat = "AB"[int(rng.integers(0, 2))]
        start = f"{date}T{int(rng.integers(160000, 190000)):06d}"
        disc = f"{date}T{int(rng.integers(200000, 235959)):06d}"
        out.append(f"S2{sat}_MSIL1C_{start}_N0208_R{orbit:03d}_{mgrs}_{disc}")
    return out


def _s1_products(tile: _Tile, days: np.ndarray, rng: np.random.Generator) -> list[str]:
    out = []
    for day in days:
        date = to_yyyymmdd(tile.year, int(day))
        hhmmss = int(rng.integers(0, 24)) * 10000 + int(rng.integers(0, 60)) * 100
        start, stop = f"{date}T{hhmmss:06d}", f"{date}T{hhmmss + 25:06d}"
        orbit, take, uid = (int(v) for v in rng.integers([10000, 0, 0], [40000, 2**20, 2**16]))
        out.append(f"S1A_IW_GRDH_1SDV_{start}_{stop}_{orbit:06d}_{take:06X}_{uid:04X}")
    return out


# --- rasters ------------------------------------------------------------------------------
def _naip(
    world: _World,
    label: np.ndarray,
    cells: np.ndarray,
    doy: int,
    spec: ModalitySpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(4, H, W)`` uint8 R, G, B, NIR at the flight date, from the fine class map."""
    groups = [W.LATENT_GROUPS["aerial"][b] for b in spec.bands]
    frac = W.class_fractions(label, len(CLASSES), label.shape)
    x = W.render_bands(
        frac, world.levels("aerial", doy), groups, 0.03, 0.015, rng, frac.shape[-1] / 16,
        spectral=world.spectra("aerial", doy, spec.bands),
        texture=world.rows.render(label, cells, spec.resolution_m, rng),
        group_gain=W.acquisition_gains((max(groups) + 1,), rng),
    )  # fmt: skip
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def _s2(
    world: _World,
    frac: np.ndarray,
    days: np.ndarray,
    bands: tuple[str, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """``(T*10, h, w)`` uint16 reflectance x 10^4, date-major."""
    groups = [W.LATENT_GROUPS["s2"][b] for b in bands]
    out = []
    for day in days:
        x = W.render_bands(
            frac, world.levels("s2", int(day)), groups, 0.02, 0.01, rng, frac.shape[-1] / 5,
            spectral=world.spectra("s2", int(day), bands),
            group_gain=W.acquisition_gains((max(groups) + 1,), rng),
        )  # fmt: skip
        out.append(np.clip(np.round(x * 10000), 1, 65535).astype(np.uint16))
    return np.concatenate(out)


def _s1(
    world: _World,
    frac: np.ndarray,
    days: np.ndarray,
    bands: tuple[str, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """``(T*2, h, w)`` float32 backscatter in dB (speckled), date-major."""
    groups = [W.LATENT_GROUPS["s1"][b] for b in bands]
    offset = np.array([S1_BAND_OFFSET_DB[b] for b in bands])[:, None, None]
    out = []
    for day in days:
        x = W.render_bands(
            frac, world.levels("s1", int(day)), groups, 0.03, 0.01, rng, frac.shape[-1] / 5
        )
        db = S1_DB_RANGE[0] + S1_DB_RANGE[1] * x + offset
        power = W.speckle(10.0 ** (db / 10.0), 5.0, rng)
        out.append((10.0 * np.log10(np.maximum(power, 1e-10))).astype(np.float32))
    return np.concatenate(out)


def _write_png(path: Path, data: np.ndarray) -> None:
    """Write ``(4, H, W)`` uint8 as an RGBA PNG (no georeferencing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count, h, w = data.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="PNG", width=w, height=h, count=count, dtype="uint8"
        ) as dst:
            dst.write(data)


def _write_tif(path: Path, data: np.ndarray, bounds: tuple[float, ...], epsg: int) -> None:
    """Write ``(bands, H, W)`` as a GeoTIFF covering ``bounds`` in EPSG:``epsg``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count, h, w = data.shape
    res = (bounds[2] - bounds[0]) / w
    profile = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=count,
        dtype=data.dtype.name,
        crs=f"EPSG:{epsg}",
        transform=Affine(res, 0.0, bounds[0], 0.0, -res, bounds[3]),
        compress="lzw",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\n" for s in lines), encoding="utf-8")


def _write_tile(
    root: Path,
    store: StoreSpec,
    world: _World,
    tile: _Tile,
    cfg: DemoConfig,
    rng: np.random.Generator,
) -> None:
    px = {m.name: m.pixels(store.tile_m) for m in store.stored_modalities}
    fine = max(px.values())
    label, cells = W.parcels((fine, fine), cfg.parcels, world.probs, rng, return_cells=True)
    fracs = {p: W.class_fractions(label, len(CLASSES), (p, p)) for p in sorted(set(px.values()))}
    bounds = tile_bounds(tile.name, store.tile_m)
    _write_lines(root / dates_path("aerial", tile.name), [_naip_product(tile, rng)])
    for m in store.stored_modalities:
        frac, path = fracs[px[m.name]], root / raster_path(m.name, tile.name)
        if m.name == "aerial":
            if px[m.name] != fine:
                raise ValueError(
                    f"S2-NAIP demo: the aerial grid ({px[m.name]} px) must be the finest"
                )
            _write_png(path, _naip(world, label, cells, tile.naip_doy, m, rng))
        elif m.name == "s2":
            days = tile.series["s2"]
            _write_tif(path, _s2(world, frac, days, m.bands, rng), bounds, tile.epsg)
            _write_lines(root / dates_path("s2", tile.name), _s2_products(tile, days, rng))
        elif m.name == "s1":
            days = tile.series["s1"]
            _write_tif(path, _s1(world, frac, days, m.bands, rng), bounds, tile.epsg)
            _write_lines(root / dates_path("s1", tile.name), _s1_products(tile, days, rng))
        else:
            raise ValueError(f"S2-NAIP demo: no generator for modality {m.name!r}")


def write(root: Path, store: StoreSpec, cfg: DemoConfig) -> None:
    """Write a demo S2-NAIP urban distribution under ``root`` (atomically: temp dir, rename)."""
    rng = np.random.default_rng(cfg.seed)
    world = _World(rng)
    tiles = _layout(store, cfg, rng)
    with atomic_path(root) as tmp:
        tmp.mkdir(parents=True)
        for tile in tiles:
            _write_tile(tmp, store, world, tile, cfg, rng)
        for split in SPLITS:
            names = pd.Series([t.name for t in tiles if t.split == split], dtype=str)
            pd.DataFrame({"name": names}).to_csv(
                tmp / split_csv(split), index=False, lineterminator="\n"
            )
