"""Reader of the TreeSatAI-TS distribution (Hugging Face IGNF/TreeSatAI-Time-Series).

Layout under ``root``: ``aerial/<name>.tif`` (4-band uint8 GeoTIFF, a few pixels wider than
the tile: the centred tile window is read), ``sentinel-ts/<stem>_<year>.h5`` (root datasets
``sen-2-data``, ``sen-2-masks``, ``sen-2-products``, ``sen-1-{asc,des}-{data,products}``) and
the MAESTRO split CSVs ``train.csv``, ``val.csv``, ``test.csv`` (``aerial_name, sen_name,
aerial_date`` + one area-fraction column per genus).

A sample listed in several split files (the official test fixture repeats one row in all
three) is kept once, in the first split of train, val, test, with a warning.
"""

from __future__ import annotations

import contextlib
import csv
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from maestro.data import geotiff as G
from maestro.data.dates import as_array, parse_yyyymmdd, product_date
from maestro.data.errors import RawFormatError, check
from maestro.data.sample import RawSample, SampleRef
from maestro.datasets.spec import SPLITS, StoreSpec
from maestro.store.cast import to_storage

#: Temporal modality -> HDF5 key prefix (``<prefix>-data``, ``<prefix>-products``).
H5_PREFIX = {"s2": "sen-2", "s1_asc": "sen-1-asc", "s1_des": "sen-1-des"}
#: Channels of ``sen-2-masks``: snow and cloud probability (%).
MASK_CHANNELS = 2
#: Leading CSV columns; the class columns follow.
ID_COLUMNS = ("aerial_name", "sen_name", "aerial_date")
#: Tolerance on the sum of a row's fractions (5-decimal rounding of 15 values).
FRACTION_SUM_TOL = 1e-3


def same_tile(aerial_name: str, sen_name: str) -> bool:
    """Whether ``sen_name`` is the time series of the tile ``aerial_name``.

    The distribution names a tile's series after its aerial image and the series' year
    (``Betula_spec._1_15679_WEFL_NLF.tif`` -> ``Betula_spec._1_15679_WEFL_NLF_2019.h5``); a
    split CSV row that pairs one tile's image with another's series would otherwise be
    converted as one sample.
    """
    stem, sen = Path(aerial_name).stem, Path(sen_name)
    head, _, year = sen.stem.rpartition("_")
    return sen.suffix == ".h5" and head == stem and len(year) == 4 and year.isdigit()


@dataclass(frozen=True)
class _Row:
    sample_id: str
    split: str
    csv_path: Path
    line: int
    aerial_path: Path
    sen_path: Path
    aerial_date: tuple[int, int, int]
    fractions: np.ndarray  # (K,) float32, store.label.names order


@contextlib.contextmanager
def _open_h5(path: Path) -> Iterator[h5py.File]:
    """Open an HDF5 file; library errors become :class:`RawFormatError` naming the file."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise RawFormatError(path, "a readable HDF5 file", f"{type(err).__name__}: {err}") from err
    try:
        yield f
    finally:
        f.close()


def _dataset(f: h5py.File, key: str, path: Path) -> h5py.Dataset:
    check(key in f, path, f"HDF5 dataset {key!r} at the root", f"keys {sorted(f.keys())}")
    obj = f[key]
    check(isinstance(obj, h5py.Dataset), path, f"{key!r} to be a dataset", type(obj).__name__)
    return obj


def _load(ds: h5py.Dataset, path: Path) -> np.ndarray:
    try:
        return ds[()]
    except (OSError, RuntimeError) as err:
        raise RawFormatError(
            path, f"readable HDF5 dataset {ds.name!r}", f"{type(err).__name__}: {err}"
        ) from err


class Reader:
    """TreeSatAI-TS raw reader (implements :class:`maestro.data.sample.RawReader`)."""

    def __init__(self, store: StoreSpec, root: Path) -> None:
        self.store = store
        self.root = Path(root)
        self._rows: dict[str, _Row] | None = None

    # --- geometry expected from the store spec ------------------------------------------
    def _expected_shape(self, mod: str) -> tuple[int, int, int]:
        spec = self.store.modality(mod)
        px = spec.pixels(self.store.tile_m)
        return len(spec.bands), px, px

    @property
    def _temporal(self) -> list[str]:
        return [m.name for m in self.store.modalities if m.name in H5_PREFIX]

    # --- split CSVs ---------------------------------------------------------------------
    def _rows_by_id(self) -> dict[str, _Row]:
        if self._rows is None:
            rows: dict[str, _Row] = {}
            for split in SPLITS:
                for row in self._read_csv(split):
                    first = rows.get(row.sample_id)
                    if first is None:
                        rows[row.sample_id] = row
                    elif first.split == split:
                        raise RawFormatError(
                            row.csv_path,
                            "each aerial_name once per split file",
                            f"{row.sample_id!r} on lines {first.line} and {row.line}",
                        )
                    else:
                        warnings.warn(
                            f"{row.csv_path}: sample {row.sample_id!r} is already in "
                            f"{first.csv_path.name}; keeping it in split {first.split!r}",
                            stacklevel=2,
                        )
            self._rows = rows
        return self._rows

    def _read_csv(self, split: str) -> list[_Row]:
        path = self.root / f"{split}.csv"
        check(path.is_file(), path, "a MAESTRO split CSV", "no such file")
        names = self.store.label.names
        try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column name
            with path.open(newline="", encoding="utf-8-sig") as fh:
                lines = list(csv.reader(fh))
        except UnicodeDecodeError as err:
            raise RawFormatError(
                path, "UTF-8 text", f"byte {err.object[err.start]:#04x} at offset {err.start}"
            ) from err
        check(bool(lines), path, "a header line", "an empty file")
        header = [c.strip() for c in lines[0]]
        expected = [*ID_COLUMNS, *names]
        check(
            tuple(header[:3]) == ID_COLUMNS
            and sorted(header[3:]) == sorted(names)
            and len(header) == len(expected),
            path,
            f"columns {','.join(expected)} (class columns in any order)",
            ",".join(header),
        )
        col = [header.index(n) for n in names]
        out = []
        for line_no, cells in enumerate(lines[1:], start=2):
            if not cells:
                continue
            where = f"line {line_no}"
            check(len(cells) == len(header), path, f"{len(header)} fields on {where}", len(cells))
            try:
                fractions = np.array([float(cells[c]) for c in col], dtype=np.float32)
                date = parse_yyyymmdd(cells[2])
            except ValueError as err:
                raise RawFormatError(path, f"numbers and a YYYYMMDD date on {where}", err) from err
            check(
                bool(np.all(np.isfinite(fractions)))
                and bool(np.all((fractions >= 0) & (fractions <= 1)))
                and 0 < float(fractions.sum()) <= 1 + FRACTION_SUM_TOL,
                path,
                f"area fractions in [0, 1] summing to more than 0 and at most 1 on {where}",
                fractions.tolist(),
            )
            aerial_path = self.root / "aerial" / cells[0].strip()
            sen_path = self.root / "sentinel-ts" / cells[1].strip()
            check(
                same_tile(aerial_path.name, sen_path.name),
                path,
                f"sen_name {aerial_path.stem}_<YYYY>.h5 on {where} (the series of the aerial tile)",
                sen_path.name,
            )
            for f in (aerial_path, sen_path):
                check(f.is_file(), path, f"an existing file for {where}", f"missing {f}")
            out.append(
                _Row(
                    sample_id=Path(cells[0].strip()).stem,
                    split=split,
                    csv_path=path,
                    line=line_no,
                    aerial_path=aerial_path,
                    sen_path=sen_path,
                    aerial_date=date,
                    fractions=fractions,
                )
            )
        return out

    # --- RawReader API ------------------------------------------------------------------
    def index(self) -> list[SampleRef]:
        """One ref per sample of train/val/test.csv; ``ndates`` from the HDF5 shapes."""
        refs = []
        for row in self._rows_by_id().values():
            ndates = {}
            with _open_h5(row.sen_path) as f:
                for mod in self._temporal:
                    ds = _dataset(f, f"{H5_PREFIX[mod]}-data", row.sen_path)
                    self._check_series_shape(ds.shape, mod, ds.name, row.sen_path)
                    ndates[mod] = int(ds.shape[0])
            refs.append(SampleRef(row.sample_id, {"default": row.split}, ndates))
        return refs

    def read(self, ref: SampleRef) -> RawSample:
        """Load one sample (storage dtypes, file band order).

        Returns rasters ``aerial`` (1, 4, P, P) uint8 (P = tile pixels, the centred window),
        ``s2`` (T, 10, h, w) float32, ``s1_asc`` / ``s1_des`` (T, 2, h, w) float32; dates
        (T, 3) int16 per modality; ``invalid["s2"]`` (T, h, w) bool (any mask channel > 0);
        label (K,) float32 area fractions; ref_date (3,) int16 (the aerial date).
        """
        rows = self._rows_by_id()
        if ref.sample_id not in rows:
            raise KeyError(f"{self.root}: sample {ref.sample_id!r} is in no split CSV")
        row = rows[ref.sample_id]
        aerial, bounds = self._read_aerial(row.aerial_path)
        ref_date = as_array([row.aerial_date])
        rasters = {"aerial": aerial}
        dates = {"aerial": ref_date}
        invalid = {}
        with _open_h5(row.sen_path) as f:
            for mod in self._temporal:
                rasters[mod], dates[mod] = self._read_series(f, mod, row.sen_path)
                if self.store.modality(mod).has_mask:
                    invalid[mod] = self._read_mask(f, mod, rasters[mod].shape, row.sen_path)
        return RawSample(
            sample_id=row.sample_id,
            rasters=rasters,
            dates=dates,
            invalid=invalid,
            label=row.fractions.copy(),
            ref_date=ref_date[0],
            bounds=bounds,
        )

    # --- rasters ------------------------------------------------------------------------
    def _read_aerial(self, path: Path) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        spec = self.store.modality("aerial")
        n_bands, px, _ = self._expected_shape("aerial")
        try:
            with rasterio.open(path) as src:
                check(src.count == n_bands, path, f"{n_bands} bands {spec.bands}", src.count)
                check(
                    src.width >= px and src.height >= px,
                    path,
                    f"at least {px}x{px} px (the {self.store.tile_m} m tile)",
                    f"{src.width}x{src.height} px",
                )
                res = spec.resolution_m
                check(
                    all(math.isclose(r, res, rel_tol=1e-6) for r in src.res),
                    path,
                    f"{res} m pixels",
                    f"{src.res}",
                )
                self._check_crs(src.crs, path)
                G.check_north_up(src, path)  # a mirrored file would be stored mirrored
                t = src.transform
                col, row = (src.width - px) // 2, (src.height - px) // 2
                data = src.read(window=Window(col, row, px, px))
                west, north = t.c + col * t.a, t.f + row * t.e
                bounds = (west, north + px * t.e, west + px * t.a, north)
        except RasterioError as err:
            cause = f" ({err.__cause__})" if err.__cause__ is not None else ""
            raise RawFormatError(
                path, "a readable GeoTIFF", f"{type(err).__name__}: {err}{cause}"
            ) from err
        return to_storage(data, spec.dtype, path, spec.bands)[None], bounds

    def _check_crs(self, crs: CRS | None, path: Path) -> None:
        if not self.store.crs:
            return
        want = CRS.from_user_input(self.store.crs)
        same = crs is not None and (
            crs == want or (want.to_epsg() is not None and crs.to_epsg() == want.to_epsg())
        )
        check(same, path, f"CRS {self.store.crs}", crs.to_string() if crs else "no CRS")

    def _check_series_shape(self, shape: tuple[int, ...], mod: str, key: str, path: Path) -> None:
        c, h, w = self._expected_shape(mod)
        check(
            len(shape) == 4 and tuple(shape[1:]) == (c, h, w),
            path,
            f"{key} of shape (T, {c}, {h}, {w})",
            tuple(shape),
        )

    def _read_series(self, f: h5py.File, mod: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
        spec = self.store.modality(mod)
        ds = _dataset(f, f"{H5_PREFIX[mod]}-data", path)
        self._check_series_shape(ds.shape, mod, ds.name, path)
        names_ds = _dataset(f, f"{H5_PREFIX[mod]}-products", path)
        check(
            names_ds.shape == (ds.shape[0],),
            path,
            f"{names_ds.name} of shape ({ds.shape[0]},)",
            names_ds.shape,
        )
        data = to_storage(_load(ds, path), spec.dtype, path, spec.bands)
        dates = []
        for name in _load(names_ds, path):
            try:
                dates.append(product_date(name))
            except (ValueError, UnicodeDecodeError) as err:
                raise RawFormatError(
                    path, f"{names_ds.name} product names with YYYYMMDD in token [-5]", repr(name)
                ) from err
        # the file holds one year of series, named in its stem (``<aerial stem>_<YYYY>.h5``)
        year = path.stem.rpartition("_")[2]
        if year.isdigit():
            other = [k for k, d in enumerate(dates) if d[0] != int(year)]
            check(
                not other,
                path,
                f"{names_ds.name} acquisitions in {year} (the year of the file name)",
                f"product {other[0]} dated {dates[other[0]][0]}" if other else "",
            )
        return data, as_array(dates)

    def _read_mask(self, f: h5py.File, mod: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
        ds = _dataset(f, f"{H5_PREFIX[mod]}-masks", path)
        want = (shape[0], MASK_CHANNELS, *shape[2:])
        check(tuple(ds.shape) == want, path, f"{ds.name} of shape {want}", tuple(ds.shape))
        prob = np.asarray(_load(ds, path))
        # cloud / snow probabilities in percent: NaN or -1 would read as clear (> 0 is False)
        ok = (prob >= 0) & (prob <= 100)  # False for NaN
        if not ok.all():
            t, c, y, x = (int(i[0]) for i in np.nonzero(~ok))
            raise RawFormatError(
                path,
                f"{ds.name} probabilities in [0, 100]",
                f"{prob[t, c, y, x]} at date {t}, channel {c}, pixel ({y}, {x}); "
                f"{int((~ok).sum())} such values",
            )
        return (prob > 0).any(axis=1)
