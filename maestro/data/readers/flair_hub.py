"""Reader of the FLAIR-HUB distribution (Hugging Face IGNF/FLAIR-HUB), also the source of FLAIR#2.

On-disk layout under ``root`` (one folder per domain-year and modality, then per ROI)::

    <DOMAIN>-<YEAR>_<TOKEN>/<ROI>/<DOMAIN>-<YEAR>_<TOKEN>_<ROI>_<row>-<col>.tif
    GLOBAL_ALL_MTD/GLOBAL_<SENSOR>_MTD_DATES.gpkg
    train.csv val.csv test.csv                       (column patch_id; scheme "default")
    train_flair2.csv val_flair2.csv test_flair2.csv  (scheme "flair2")

``patch_id`` is ``<DOMAIN>-<YEAR>_<ROI>_<row>-<col>``; ``TOKEN`` is the folder token of
:data:`maestro.datasets.flair_hub.FOLDER_TOKENS`. Multi-date GeoTIFFs stack dates x channels
in the band axis, date-major; the date count comes from the ``*_MTD_DATES.gpkg`` tables:

- single-date sensors (``GLOBAL_AERIAL_MTD_DATES.gpkg``): column ``date`` = ``YYYYMMDD``,
  day ``00`` = unknown day (parsed as day 01), one row per patch;
- time series (``GLOBAL_SENTINEL2_MTD_DATES.gpkg`` ...): column ``acquisition_dates`` = a JSON
  dict ``{"1": "YYYYMMDD", ...}``. MAESTRO keys these per ROI (``<DOMAIN>-<YEAR>_<ROI>``),
  FLAIR-HUB's own code per patch: a patch's row is looked up by full ``patch_id`` first,
  then by its ROI key (any row of the same ROI).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import rasterio
import rasterio.errors
from einops import rearrange
from rasterio.crs import CRS

from maestro.data import dates as D
from maestro.data import geotiff as G
from maestro.data.errors import RawFormatError, check
from maestro.data.sample import RawSample, SampleRef
from maestro.datasets.flair_hub import FOLDER_TOKENS
from maestro.datasets.spec import SPLITS, ModalitySpec, StoreSpec
from maestro.store.cast import to_storage

#: Folder of the global metadata GeoPackages.
MTD_DIR = "GLOBAL_ALL_MTD"
#: Year token of the historical panchromatic modality (not used by MAESTRO).
HISTORICAL_YEAR = "195X"
#: Channels of each date in the Sentinel-2 ``MSK-SC`` mask (probabilities 0-100).
MASK_CHANNELS = ("snow", "cloud")


# --- layout -------------------------------------------------------------------------------
def split_patch_id(patch_id: str) -> tuple[str, str, str]:
    """``"D006-2020_FF-S1-14_5-5"`` -> ``("D006-2020", "FF-S1-14", "5-5")``.

    Raises ``ValueError`` unless the id has exactly the three ``_``-separated tokens
    ``<DOMAIN>-<YEAR>``, ``<ROI>`` and ``<row>-<col>``.
    """
    parts = patch_id.split("_")
    ok = len(parts) == 3 and parts[0].count("-") == 1 and parts[2].count("-") == 1
    if not ok or not all(p.isdigit() for p in parts[2].split("-")):
        raise ValueError(
            f"patch_id {patch_id!r} is not <DOMAIN>-<YEAR>_<ROI>_<row>-<col> (e.g. "
            "'D006-2020_FF-S1-14_5-5')"
        )
    return parts[0], parts[1], parts[2]


def roi_key(patch_id: str) -> str:
    """The ROI key MAESTRO uses for Sentinel dates: ``<DOMAIN>-<YEAR>_<ROI>``."""
    domain, roi, _ = split_patch_id(patch_id)
    return f"{domain}_{roi}"


def patch_path(patch_id: str, token: str) -> PurePosixPath:
    """Path of a patch's GeoTIFF relative to the dataset root, for a folder ``token``.

    ``patch_path("D012-2019_AF-S1-27_5-10", "AERIAL_RGBI")`` ->
    ``D012-2019_AERIAL_RGBI/AF-S1-27/D012-2019_AERIAL_RGBI_AF-S1-27_5-10.tif``. The
    historical ``AERIAL-RLT_*`` modalities use the year token ``195X``.
    """
    domain, roi, pos = split_patch_id(patch_id)
    if token.startswith("AERIAL-RLT"):
        domain = f"{domain.split('-')[0]}-{HISTORICAL_YEAR}"
    prefix = f"{domain}_{token}"
    return PurePosixPath(prefix, roi, f"{prefix}_{roi}_{pos}.tif")


def dates_table(token: str) -> PurePosixPath:
    """Date table of a folder token.

    ``SENTINEL2_TS`` -> ``GLOBAL_ALL_MTD/GLOBAL_SENTINEL2_MTD_DATES.gpkg``.
    """
    sensor = token.rsplit("_", 1)[0]
    return PurePosixPath(MTD_DIR, f"GLOBAL_{sensor}_MTD_DATES.gpkg")


def split_csv(scheme: str, split: str) -> str:
    """Split CSV name: ``train.csv`` for scheme ``default``, ``train_<scheme>.csv`` otherwise."""
    return f"{split}.csv" if scheme == "default" else f"{split}_{scheme}.csv"


#: Largest distance in years between a Sentinel acquisition and the patch's aerial campaign
#: year (the ``<DOMAIN>-<YEAR>`` token): the series cover the campaign year [I].
SERIES_YEARS_FROM_CAMPAIGN = 1


# --- metadata -----------------------------------------------------------------------------
def _read_table(path: Path, column: str) -> pd.DataFrame:
    """The ``patch_id`` and ``column`` columns of a date GeoPackage (geometry not read)."""
    if not path.is_file():
        raise RawFormatError(path, "a date GeoPackage", "no such file")
    try:
        info = pyogrio.read_info(path)
        names = list(info["fields"])
        check({"patch_id", column} <= set(names), path, f"columns patch_id, {column}", names)
        df = pyogrio.read_dataframe(path, columns=["patch_id", column], read_geometry=False)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
        raise RawFormatError(path, "a readable GeoPackage", f"{type(err).__name__}: {err}") from err
    return df


class _DateTable:
    """Dates of one sensor, by ``patch_id`` and (time series) by ROI key."""

    def __init__(self, path: Path, series: bool) -> None:
        self.path = path
        column = "acquisition_dates" if series else "date"
        df = _read_table(path, column)
        parsed: dict[str, tuple[str, ...]] = {}  # raw cell -> date strings, parsed once
        self.by_id: dict[str, tuple[str, ...]] = {}
        self.by_roi: dict[str, tuple[str, ...]] = {}
        for pid, cell in zip(df["patch_id"].astype(str), df[column].astype(str), strict=True):
            if cell not in parsed:
                parsed[cell] = self._parse(cell, pid, series)
            seen = self.by_id.get(pid)
            if seen is not None and seen != parsed[cell]:  # which one is right is unknowable
                raise RawFormatError(
                    self.path,
                    f"one row of dates for {pid} (or identical rows)",
                    f"rows with {', '.join(seen[:3])}... and {', '.join(parsed[cell][:3])}...",
                )
            self.by_id[pid] = parsed[cell]
            if series:
                try:
                    key = roi_key(pid)
                except ValueError:
                    key = pid  # a table keyed by ROI already
                self.by_roi.setdefault(key, parsed[cell])

    def _parse(self, cell: str, pid: str, series: bool) -> tuple[str, ...]:
        try:
            if not series:
                D.parse_yyyymmdd(cell)
                return (cell,)
            out = tuple(str(v) for v in D.keyed_values(cell, base=1))
            for s in out:
                D.parse_yyyymmdd(s)
            return out
        except (ValueError, TypeError, AttributeError) as err:  # AttributeError: not a dict
            what = '{"1": "YYYYMMDD", ...}' if series else "a YYYYMMDD date"
            raise RawFormatError(self.path, f"{what} for {pid}", f"{cell[:80]!r} ({err})") from err

    def lookup(self, patch_id: str) -> tuple[str, ...]:
        """Date strings of a patch; raises :class:`RawFormatError` naming the table."""
        if patch_id in self.by_id:
            return self.by_id[patch_id]
        key = roi_key(patch_id)
        if key in self.by_roi:
            return self.by_roi[key]
        where = f"patch {patch_id}" + (f" or ROI {key}" if self.by_roi else "")
        raise RawFormatError(self.path, f"a row for {where}", "no such row")


# --- rasters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Footprint:
    """Where a GeoTIFF lies: its path, ``(minx, miny, maxx, maxy)`` bounds and CRS."""

    path: Path
    bounds: tuple[float, float, float, float]
    crs: CRS | None


def check_footprints(
    ref: tuple[Footprint, float], others: list[tuple[Footprint, float]], tile_m: float
) -> None:
    """Every file of a patch covers the reference's ``tile_m`` footprint in its CRS.

    ``ref`` and ``others``: each file with its pixel size in metres. FLAIR-HUB gives every
    modality of a patch the same 102.4 m footprint (EPSG:2154); a file that lies elsewhere (a
    neighbouring patch's tile filed under this id) or spans another extent (a resolution other
    than the declared one at the expected pixel count) would otherwise be read silently. Tolerance:
    half a pixel of the file's own resolution (decision D18).
    """
    ref_fp = ref[0]
    for fp, res in [ref, *others]:
        tol = 0.5 * res
        extent = (fp.bounds[2] - fp.bounds[0], fp.bounds[3] - fp.bounds[1])
        check(
            all(abs(e - tile_m) <= tol for e in extent),
            fp.path,
            f"a footprint of {tile_m} x {tile_m} m ({res} m pixels)",
            f"{extent[0]:.6g} x {extent[1]:.6g} m",
        )
        if fp is ref_fp:
            continue
        check(
            fp.crs == ref_fp.crs, fp.path, f"the CRS of {ref_fp.path.name} ({ref_fp.crs})", fp.crs
        )
        check(
            max(abs(a - b) for a, b in zip(fp.bounds, ref_fp.bounds, strict=True)) <= tol,
            fp.path,
            f"the footprint of {ref_fp.path.name} {_fmt(ref_fp.bounds)} (within {tol:.6g} m)",
            _fmt(fp.bounds),
        )


def _fmt(bounds: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in bounds) + ")"


def _read_tif(
    path: Path,
    bands: int,
    shape: tuple[int, int],
    dtype: str,
    crs: str | None = None,
    why: str = "",
    blank: bool = True,
    names: Sequence[str] = (),
) -> tuple[np.ndarray, Footprint, np.ndarray | None]:
    """Read all bands of a GeoTIFF as ``(bands, H, W)`` after checking its profile.

    ``why`` explains the expected band count in the error (e.g. the date table it came from).
    Returns the values (declared no-data pixels blanked, if ``blank``:
    :mod:`maestro.data.nodata`), the file's footprint (for :func:`check_footprints`) and the
    no-data pixels (or None). Labels and masks are not blanked: a class value stays itself.
    The grid must be north-up, scale / offset tags are applied (float storage), pixels an
    internal or alpha mask marks are missing like no-data ones, and band descriptions that
    name ``names`` must list them in that order (:mod:`maestro.data.geotiff`, D25).
    """
    if not path.is_file():
        raise RawFormatError(path, "a GeoTIFF", "no such file")
    try:
        with rasterio.open(path) as src:
            count, size = src.count, (src.height, src.width)
            found_crs, bounds = src.crs, tuple(src.bounds)
            check(count == bands, path, f"{bands} bands{why}", f"{count} bands")
            check(size == shape, path, f"{shape[0]}x{shape[1]} pixels", f"{size[0]}x{size[1]}")
            if crs:
                check(
                    found_crs is not None and found_crs == CRS.from_user_input(crs),
                    path,
                    f"CRS {crs}",
                    found_crs,
                )
            if names:
                G.check_band_names(src, path, names)
            data, holes = G.read_values(src, path, dtype, blank)
    except rasterio.errors.RasterioError as err:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        raise RawFormatError(path, "a readable GeoTIFF", f"{err}{cause}") from err
    data = to_storage(data, dtype, path)
    return data, Footprint(path, bounds, found_crs), holes  # type: ignore[arg-type]


class Reader:
    """FLAIR-HUB / FLAIR#2 raw reader (implements :class:`maestro.data.sample.RawReader`).

    Split CSVs and date GeoPackages are read once at construction; ``read`` opens the
    GeoTIFFs of one patch.
    """

    def __init__(self, store: StoreSpec, root: Path) -> None:
        self.store = store
        self.root = Path(root)
        self._splits = self._read_splits()
        ref = store.label.grid_modality or "aerial"
        self._ref_token = FOLDER_TOKENS[ref]
        self._ref_dates = _DateTable(self.root / dates_table(self._ref_token), series=False)
        self._series = {
            m.name: _DateTable(self.root / dates_table(FOLDER_TOKENS[m.name]), series=True)
            for m in store.modalities
            if m.temporal
        }

    def _read_splits(self) -> dict[str, dict[str, str | None]]:
        """patch_id -> {scheme: split or None}, in CSV order (default scheme first)."""
        out: dict[str, dict[str, str | None]] = {}
        schemes = self.store.split_schemes
        for scheme in schemes:
            for split in SPLITS:
                path = self.root / split_csv(scheme, split)
                for pid in self._csv_ids(path):
                    entry = out.setdefault(pid, dict.fromkeys(schemes))
                    check(
                        entry[scheme] is None,
                        path,
                        f"{pid} in one {scheme} split only",
                        f"also in {entry[scheme]}",
                    )
                    entry[scheme] = split
        return out

    @staticmethod
    def _csv_ids(path: Path) -> Iterator[str]:
        if not path.is_file():
            raise RawFormatError(path, "a split CSV with column patch_id", "no such file")
        try:
            df = pd.read_csv(path, dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise RawFormatError(path, "a CSV with column patch_id", str(err)) from err
        check("patch_id" in df.columns, path, "a column patch_id", list(df.columns))
        for pid in df["patch_id"]:
            try:
                split_patch_id(str(pid))
            except ValueError as err:
                raise RawFormatError(path, "<DOMAIN>-<YEAR>_<ROI>_<row>-<col>", pid) from err
            yield str(pid)

    def index(self) -> list[SampleRef]:
        """Union of the split schemes' CSVs; ``ndates`` from the date tables."""
        refs = []
        for pid, splits in self._splits.items():
            self._ref_dates.lookup(pid)
            nd = {name: len(table.lookup(pid)) for name, table in self._series.items()}
            refs.append(SampleRef(sample_id=pid, splits=dict(splits), ndates=nd))
        return refs

    def _path(self, patch_id: str, token: str) -> Path:
        return self.root / patch_path(patch_id, token)

    def read(self, ref: SampleRef) -> RawSample:
        """All modalities of one patch: ``(T, C, H, W)`` rasters, dates, S2 mask, CoSIA label."""
        pid = ref.sample_id
        ref_str = self._ref_dates.lookup(pid)[0]
        ref_date = D.as_array([D.parse_yyyymmdd(ref_str)])  # (1, 3); day 00 -> 01
        year = split_patch_id(pid)[0].rpartition("-")[2]  # <DOMAIN>-<YEAR>
        check(year.isdigit(), self.root, f"a campaign year in patch id {pid}", year)
        campaign = int(year)
        check(
            int(ref_date[0, 0]) == campaign,
            self._ref_dates.path,
            f"an aerial date in {campaign} for {pid} (its campaign year)",
            ref_str,
        )
        rasters: dict[str, np.ndarray] = {}
        dates: dict[str, np.ndarray] = {}
        invalid: dict[str, np.ndarray] = {}
        ref_fp: tuple[Footprint, float] | None = None
        footprints: list[tuple[Footprint, float]] = []
        for spec in self.store.modalities:
            token = FOLDER_TOKENS[spec.name]
            px = spec.pixels(self.store.tile_m)
            if spec.temporal:
                stamps = self._series[spec.name].lookup(pid)
                dates[spec.name] = D.as_array(D.parse_yyyymmdd(s) for s in stamps)
                far = [s for s in stamps if abs(int(s[:4]) - campaign) > SERIES_YEARS_FROM_CAMPAIGN]
                check(
                    not far,
                    self._series[spec.name].path,
                    f"{spec.name} dates of {pid} within {SERIES_YEARS_FROM_CAMPAIGN} year of its "
                    f"campaign {campaign}",
                    f"{len(far)} dates such as {far[:1]}",
                )
            else:
                dates[spec.name] = ref_date.copy()
            t, c = len(dates[spec.name]), len(spec.bands)
            crs = self.store.crs if token == self._ref_token else None
            why = self._why(spec.name, t, c) if spec.temporal else ""
            flat, fp, holes = _read_tif(
                self._path(pid, token), t * c, (px, px), spec.dtype, crs, why,
                names=spec.bands if not spec.temporal else (),
            )  # fmt: skip
            rasters[spec.name] = rearrange(flat, "(t c) h w -> t c h w", t=t)
            if token == self._ref_token:
                ref_fp = (fp, spec.resolution_m)
            else:
                footprints.append((fp, spec.resolution_m))
            if spec.has_mask:
                invalid[spec.name], mask_fp = self._read_mask(pid, spec, t, px)
                footprints.append((mask_fp, spec.resolution_m))
                if holes is not None:  # no-data pixels of an integer series: invalid (D22)
                    invalid[spec.name] |= rearrange(holes, "(t c) h w -> t c h w", t=t).any(1)
        label, label_fp = self._read_label(pid)
        grid = self.store.modality(self.store.label.grid_modality or "aerial")
        footprints.append((label_fp, grid.resolution_m))
        if ref_fp is not None:
            check_footprints(ref_fp, footprints, self.store.tile_m)
        return RawSample(
            sample_id=pid,
            rasters=rasters,
            dates=dates,
            invalid=invalid,
            label=label,
            ref_date=ref_date[0],
            bounds=ref_fp[0].bounds if ref_fp is not None else None,
        )

    def _why(self, name: str, t: int, c: int) -> str:
        return f" ({t} dates in {self._series[name].path.name} x {c} channels)"

    def _read_mask(
        self, pid: str, spec: ModalitySpec, t: int, px: int
    ) -> tuple[np.ndarray, Footprint]:
        """``(T, H, W)`` bool: any mask channel (snow, cloud probability) above 0."""
        token = FOLDER_TOKENS[f"{spec.name}_mask"]
        why = self._why(spec.name, t, len(MASK_CHANNELS))
        flat, fp, _ = _read_tif(
            self._path(pid, token), len(MASK_CHANNELS) * t, (px, px), "uint8", None, why, False
        )
        return rearrange(flat, "(t c) h w -> t c h w", t=t).max(axis=1) > 0, fp

    def _read_label(self, pid: str) -> tuple[np.ndarray, Footprint]:
        """``(H, W)`` raw CoSIA values on the grid modality's pixels."""
        grid = self.store.modality(self.store.label.grid_modality or "aerial")
        px = grid.pixels(self.store.tile_m)
        flat, fp, _ = _read_tif(
            self._path(pid, FOLDER_TOKENS["label"]),
            1,
            (px, px),
            self.store.label.dtype,
            blank=False,
        )
        return flat[0], fp
