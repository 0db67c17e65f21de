"""Reader of the PASTIS-HD distribution (Hugging Face IGNF/PASTIS-HD), as MAESTRO reads it.

Layout under ``root``::

    train.csv, val.csv, test.csv                 column ``image`` = patch id
    metadata.geojson                             one Feature per patch, property ``id`` and
                                                 ``dates-S2`` / ``dates-S1A`` / ``dates-S1D``
                                                 = {"0": YYYYMMDD, "1": ...}
    DATA_S2/S2_<id>.npy                          (T, 10, H, W) int16, L2A reflectance x 1e4
    DATA_S1A/S1A_<id>.npy, DATA_S1D/S1D_<id>.npy (T, 3, H, W) float16 dB: VV, VH, VV/VH
    DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019/SPOT6_RVB_1M00_2019_<id>.tif   RGB uint8 GeoTIFF
    ANNOTATIONS/TARGET_<id>.npy                  (3, H, W) uint8, class 0..19 in channel 0

The number of dates of a series comes from the metadata only; the array's T must match it.
PASTIS has no cloud mask, so ``invalid`` is empty. The SPOT mosaic carries no date: like
MAESTRO it gets the store's fixed reference date (2019-07-01), which is also every sample's
``ref_date``. Sizes are checked against the (possibly overridden) :class:`StoreSpec`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds

from maestro.data import geotiff as G
from maestro.data.dates import as_array, date_dict, parse_yyyymmdd
from maestro.data.errors import RawFormatError, check
from maestro.data.sample import RawSample, SampleRef
from maestro.datasets.spec import SPLITS, StoreSpec
from maestro.store.cast import to_storage

#: Temporal modality -> (folder, file prefix, metadata date property).
SERIES: dict[str, tuple[str, str, str]] = {
    "s2": ("DATA_S2", "S2", "dates-S2"),
    "s1_asc": ("DATA_S1A", "S1A", "dates-S1A"),
    "s1_des": ("DATA_S1D", "S1D", "dates-S1D"),
}
SPOT_DIR = "DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019"
SPOT_PREFIX = "SPOT6_RVB_1M00_2019"
METADATA = "metadata.geojson"
#: Key base of the ``dates-*`` dicts ("0", "1", ...).
DATE_KEY_BASE = 0
#: Channels of ``TARGET_<id>.npy``; channel 0 is the semantic class.
TARGET_CHANNELS = 3


def series_path(root: Path, modality: str, patch_id: str) -> Path:
    """``DATA_S2/S2_<id>.npy`` (or the S1A / S1D equivalent) under ``root``."""
    folder, prefix, _ = SERIES[modality]
    return root / folder / f"{prefix}_{patch_id}.npy"


def spot_path(root: Path, patch_id: str) -> Path:
    """The SPOT GeoTIFF of a patch."""
    return root / SPOT_DIR / f"{SPOT_PREFIX}_{patch_id}.tif"


def target_path(root: Path, patch_id: str) -> Path:
    """The semantic annotation of a patch."""
    return root / "ANNOTATIONS" / f"TARGET_{patch_id}.npy"


#: Metadata columns holding each patch's geometry bounds (minx, miny, maxx, maxy).
FOOTPRINT_COLUMNS = ("_minx", "_miny", "_maxx", "_maxy")
#: First bytes of every .npy file (the NumPy format's magic string).
NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: Path) -> np.ndarray:
    """Memory-map a .npy file; a missing, truncated or corrupt file raises RawFormatError."""
    if not path.is_file():
        raise RawFormatError(path, "an existing .npy file", "no such file")
    with path.open("rb") as fh:
        head = fh.read(6)
    if head != NPY_MAGIC:  # np.load would report "pickled data" for any other bytes
        raise RawFormatError(path, "a .npy file (NumPy magic \\x93NUMPY)", f"first bytes {head!r}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise RawFormatError(path, "a readable .npy array", f"{type(err).__name__}: {err}") from err


def _as_dtype(
    arr: np.ndarray, dtype: str, path: Path, bands: tuple[str, ...] | None = None
) -> np.ndarray:
    """Copy ``arr`` out of its memory map in the declared storage dtype
    (:func:`maestro.store.cast.to_storage`: values that do not fit are an error)."""
    try:
        return to_storage(arr, dtype, path, bands)
    except RawFormatError:
        raise
    except (ValueError, OSError) as err:  # a mapped page that cannot be read
        raise RawFormatError(path, "a readable .npy array", f"{type(err).__name__}: {err}") from err


class Reader:
    """PASTIS-HD raw reader (implements :class:`maestro.data.sample.RawReader`).

    Args:
        store: the PASTIS-HD store spec (sizes are derived from it).
        root: the distribution root.
    """

    def __init__(self, store: StoreSpec, root: Path) -> None:
        self.store = store
        self.root = Path(root)

    # --- metadata -------------------------------------------------------------------------
    @functools.cached_property
    def metadata(self) -> pd.DataFrame:
        """``metadata.geojson`` as a frame indexed by the ``id`` property (a string)."""
        path = self.root / METADATA
        if not path.is_file():
            raise RawFormatError(path, "the PASTIS-HD metadata GeoJSON", "no such file")
        try:
            frame = gpd.read_file(path)
        except Exception as err:  # pyogrio raises several unrelated error types
            raise RawFormatError(
                path, "a readable GeoJSON", f"{type(err).__name__}: {err}"
            ) from err
        check(
            "id" in frame.columns,
            path,
            "an 'id' property (patch id) on every feature",
            f"properties {sorted(c for c in frame.columns if c != 'geometry')}",
        )
        missing = [key for _, _, key in SERIES.values() if key not in frame.columns]
        check(not missing, path, f"date properties {[k for *_, k in SERIES.values()]}", missing)
        ids = frame["id"].map(lambda v: "" if v is None or v != v else str(v).strip())
        check(not (ids == "").any(), path, "a non-empty 'id' on every feature", "an empty id")
        check(ids.is_unique, path, "unique 'id' values", "duplicates")
        out = pd.DataFrame(frame.drop(columns="geometry")).set_index(ids.rename(None))
        # footprints for the SPOT check, in the store CRS: the published file has Lambert-93
        # metres and no "crs" member, which GeoJSON readers take for WGS 84 degrees
        crs = frame.crs
        usable = (
            crs is None or crs.is_geographic or bool(self.store.crs and crs.equals(self.store.crs))
        )
        bounds = frame.geometry.bounds.to_numpy()
        if usable and bounds.size and np.all(np.abs(bounds[np.isfinite(bounds)]) > 360.0):
            out[list(FOOTPRINT_COLUMNS)] = bounds  # not degrees: projected metres
        return out

    def _dates(self, patch_id: str, modality: str) -> np.ndarray:
        """``(T, 3)`` int16 dates of one series, from the metadata."""
        row = self._row(patch_id)
        key = SERIES[modality][2]
        value: Any = row[key]
        path = self.root / METADATA
        if not isinstance(value, str | Mapping):
            raise RawFormatError(
                path, f"{key} of patch {patch_id} as a JSON object", type(value).__name__
            )
        try:
            return as_array(date_dict(value, base=DATE_KEY_BASE))
        except ValueError as err:
            raise RawFormatError(
                path, f"{key} of patch {patch_id} as {{'0': YYYYMMDD, ...}}", str(err)
            ) from err

    def _row(self, patch_id: str) -> pd.Series:
        meta = self.metadata
        if patch_id not in meta.index:
            raise RawFormatError(
                self.root / METADATA, f"a feature with id {patch_id!r}", "no such feature"
            )
        return meta.loc[patch_id]

    # --- RawReader ------------------------------------------------------------------------
    def index(self) -> list[SampleRef]:
        """Samples of train.csv, val.csv and test.csv (in that order), with date counts."""
        refs: list[SampleRef] = []
        seen: dict[str, str] = {}
        for split in SPLITS:
            path = self.root / f"{split}.csv"
            if not path.is_file():
                raise RawFormatError(path, "a split CSV with column 'image'", "no such file")
            try:
                table = pd.read_csv(path, dtype=str, keep_default_na=False)
            except (ValueError, OSError) as err:
                raise RawFormatError(
                    path, "a readable CSV", f"{type(err).__name__}: {err}"
                ) from err
            check("image" in table.columns, path, "a column 'image'", list(table.columns))
            for raw in table["image"]:
                pid = raw.strip()
                check(pid != "", path, "a patch id in every row", "an empty 'image' cell")
                if pid in seen:
                    found = f"patch {pid} also in {seen[pid]}.csv"
                    raise RawFormatError(path, "each patch in one split only", found)
                seen[pid] = split
                ndates = {m: len(self._dates(pid, m)) for m in SERIES}
                refs.append(SampleRef(pid, {"default": split}, ndates))
        return refs

    def read(self, ref: SampleRef) -> RawSample:
        """Load one patch: rasters in file order and storage dtypes, dates, label, bounds."""
        pid = ref.sample_id
        tile_m = self.store.tile_m
        rasters: dict[str, np.ndarray] = {}
        dates: dict[str, np.ndarray] = {}
        for name in SERIES:
            spec = self.store.modality(name)
            px = spec.pixels(tile_m)
            path = series_path(self.root, name, pid)
            d = self._dates(pid, name)
            arr = _load_npy(path)
            expected = (len(d), len(spec.bands), px, px)
            check(arr.ndim == 4, path, f"a (T, C, H, W) array of shape {expected}", arr.shape)
            check(
                arr.shape[0] == len(d),
                path,
                f"T = {len(d)} dates as listed in {METADATA}",
                f"T = {arr.shape[0]}",
            )
            n_bands = len(spec.bands)
            found = f"{arr.shape[1]} channels"
            check(arr.shape[1] == n_bands, path, f"{n_bands} channels {spec.bands}", found)
            check(arr.shape[2:] == (px, px), path, f"{px} x {px} pixels", arr.shape[2:])
            rasters[name] = _as_dtype(arr, spec.dtype, path, spec.bands)
            dates[name] = d
        rasters["spot"], bounds = self._read_spot(pid)
        self._check_footprint(pid, bounds)
        if self.store.ref_date is None:
            raise ValueError(f"store {self.store.name!r} declares no ref_date")
        ref_date = as_array([parse_yyyymmdd(self.store.ref_date)])
        dates["spot"] = ref_date.copy()
        return RawSample(
            sample_id=pid,
            rasters=rasters,
            dates=dates,
            invalid={},
            label=self._read_target(pid),
            ref_date=ref_date[0],
            bounds=bounds,
        )

    def _check_footprint(self, pid: str, bounds: tuple[float, float, float, float] | None) -> None:
        """The SPOT image lies on the patch's metadata geometry, to a quarter of the tile
        (D27): another patch's image filed under this id is refused; the geometry is only
        compared where it is in projected metres of the store CRS (or names no CRS)."""
        row = self._row(pid)
        if bounds is None or FOOTPRINT_COLUMNS[0] not in row.index:
            return
        want = tuple(float(row[c]) for c in FOOTPRINT_COLUMNS)
        if not all(np.isfinite(want)):
            return
        tol = 0.25 * self.store.tile_m
        check(
            np.allclose(bounds, want, rtol=0.0, atol=tol),
            spot_path(self.root, pid),
            f"the footprint of patch {pid} in {METADATA} {tuple(round(v, 1) for v in want)} "
            f"(to {tol:g} m)",
            tuple(round(v, 1) for v in bounds),
        )

    # --- per-file readers -----------------------------------------------------------------
    def _read_spot(self, pid: str) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
        """``(1, 3, Hs, Ws)`` uint8 SPOT mosaic and its bounds in the store CRS."""
        spec = self.store.modality("spot")
        px = spec.pixels(self.store.tile_m)
        path = spot_path(self.root, pid)
        if not path.is_file():
            raise RawFormatError(path, "an existing GeoTIFF", "no such file")
        try:
            with rasterio.open(path) as src:
                n_bands = len(spec.bands)
                found = f"{src.count} bands"
                check(src.count == n_bands, path, f"{n_bands} bands {spec.bands}", found)
                check(
                    (src.height, src.width) == (px, px),
                    path,
                    f"{px} x {px} pixels",
                    f"{src.height} x {src.width}",
                )
                check(all(t == spec.dtype for t in src.dtypes), path, spec.dtype, src.dtypes)
                res = spec.resolution_m  # the pixel count alone allows a 4x larger area
                check(
                    all(abs(r - res) <= 0.01 * res for r in src.res),
                    path,
                    f"{res} m pixels",
                    f"{src.res[0]:g} x {src.res[1]:g} m",
                )
                if src.crs is not None:
                    G.check_north_up(src, path)
                G.check_colour_order(src, path, spec.bands)
                pixels = src.read()
                bounds = self._bounds(src.bounds, src.crs)
        except RasterioError as err:
            raise RawFormatError(
                path, "a readable GeoTIFF", f"{type(err).__name__}: {err}"
            ) from err
        return pixels[None], bounds

    def _bounds(self, bounds: Any, crs: CRS | None) -> tuple[float, float, float, float] | None:
        """Tile bounds in the store CRS (reprojected if the file uses another CRS)."""
        if crs is None:
            return None
        if self.store.crs and crs != CRS.from_user_input(self.store.crs):
            bounds = transform_bounds(crs, self.store.crs, *bounds)
        return (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))

    def _read_target(self, pid: str) -> np.ndarray:
        """``(H, W)`` uint8 raw class raster (channel 0 of TARGET)."""
        grid = self.store.modality(self.store.label.grid_modality or "s2")
        px = grid.pixels(self.store.tile_m)
        path = target_path(self.root, pid)
        arr = _load_npy(path)
        shape = (TARGET_CHANNELS, px, px)
        check(arr.shape == shape, path, f"a (3, H, W) array of shape {shape}", arr.shape)
        label = _as_dtype(arr[0], self.store.label.dtype, path)
        n_classes = len(self.store.label.names)
        top = int(label.max())
        check(top < n_classes, path, f"class values 0..{n_classes - 1}", f"value {top}")
        return label
