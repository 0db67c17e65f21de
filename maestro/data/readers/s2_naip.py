"""Reader of S2-NAIP urban as MAESTRO lays it out (IGNF/MAESTRO ``maestro/dataset/s2_naip.py``).

MAESTRO reads an IGN-internal conversion of ``allenai/s2-naip``; no converter is published,
so the layout below is *defined* here from the paths the upstream loader opens [C] and the
allenai dataset card [H]. Items marked [I] are our inference.

On-disk layout under ``root``::

    naip/<name>.png                  NAIP R, G, B, NIR; uint8; 4-band PNG; no CRS
    sentinel2/<name>_stacked.tif     T x 10 bands, date-major; uint16 reflectance x 10^4
    sentinel1/<name>.tif             T x 2 bands (VV, VH), date-major; float32 dB
    dates/naip/<name>.txt            one NAIP product string
    dates/s2/<name>.txt              T Sentinel-2 product names, one per line
    dates/s1/<name>.txt              T Sentinel-1 product names, one per line
    train.csv val.csv test.csv       column ``name`` (scheme "default")

- **Tile names** [H, I]: the allenai tile id ``<epsg>_<col>_<row>``, e.g. ``32610_859_-8247``.
  ``<epsg>`` is the tile's UTM projection (EPSG:326xx), ``col``/``row`` count tiles of
  ``tile_m`` (640 m = 512 px at 1.25 m) with the y axis pointing down, so the tile spans
  ``x in [col, col + 1) * tile_m`` and ``y in (-(row + 1), -row] * tile_m`` (the allenai card:
  ``32612_960_-6049`` spans x 614400-615040, |y| 3870720-3871360). We keep the allenai order
  (column before row) because MAESTRO's files are named after the allenai tiles; the reader
  accepts any file-stem name and only cross-checks the EPSG code when a name has this form.
- **Georeferencing** [I]: the S2 and S1 GeoTIFFs carry the tile's UTM CRS and its footprint
  (both must agree, and span ``tile_m``); the sample's ``bounds``/``crs`` are those of the S2
  file. The PNG has no CRS: it is taken to cover the same footprint (checked by size only).
- **Band orders**: NAIP R, G, B, NIR [C: MAESTRO reorders with ``[3, 0, 1, 2]`` to NIR first];
  S2 B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 [I: the upstream order is unknown]; S1 VV, VH [I].
- **Dates** [C]: NAIP date = last ``_`` token of the product string, first 8 characters
  (``m_4712230_ne_10_060_20190720`` -> 2019-07-20); it is also ``ref_date``. S2/S1 dates =
  token ``[-5]``, first 8 characters (:func:`maestro.data.dates.product_date`). Line ``k`` of a
  date file is date ``k`` of the raster: the band count must be ``T x C`` exactly. Series are
  returned in time order (a stable sort of the lines, applied to the rasters too) [I].
- No cloud mask (the store declares none) and no label (pretraining only).
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
from einops import rearrange
from rasterio.crs import CRS
from rasterio.io import MemoryFile

from maestro.data import dates as D
from maestro.data import geotiff as G
from maestro.data.errors import RawFormatError, check
from maestro.data.sample import RawSample, SampleRef
from maestro.datasets.spec import SPLITS, ModalitySpec, StoreSpec
from maestro.store.cast import to_storage

#: Raster path templates per stored modality (``{name}`` = tile name).
RASTER_FILES = {
    "aerial": "naip/{name}.png",
    "s2": "sentinel2/{name}_stacked.tif",
    "s1": "sentinel1/{name}.tif",
}
#: Date-file folder and product-name token (counted from the end) per stored modality.
DATE_FILES = {"aerial": ("naip", 1), "s2": ("s2", 5), "s1": ("s1", 5)}
#: The modality whose GeoTIFF gives a sample's bounds and CRS.
GEO_REFERENCE = "s2"
#: Bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Channels per PNG colour type (IHDR field).
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

_TILE_NAME = re.compile(r"^(32[67]\d\d)_(-?\d+)_(-?\d+)$")


# --- layout -------------------------------------------------------------------------------
def raster_path(modality: str, name: str) -> PurePosixPath:
    """``raster_path("s2", "32610_859_-8247")`` -> ``sentinel2/32610_859_-8247_stacked.tif``."""
    return PurePosixPath(RASTER_FILES[modality].format(name=name))


def dates_path(modality: str, name: str) -> PurePosixPath:
    """``dates_path("aerial", n)`` -> ``dates/naip/<n>.txt`` (``s2``, ``s1`` likewise)."""
    return PurePosixPath("dates", DATE_FILES[modality][0], f"{name}.txt")


def split_csv(split: str) -> str:
    """Split CSV of ``split``: ``train.csv``, ``val.csv`` or ``test.csv``."""
    return f"{split}.csv"


def tile_name(epsg: int, col: int, row: int) -> str:
    """``tile_name(32610, 859, -8247)`` -> ``"32610_859_-8247"`` (allenai tile id)."""
    return f"{epsg}_{col}_{row}"


def parse_tile_name(name: str) -> tuple[int, int, int]:
    """``"32610_859_-8247"`` -> ``(32610, 859, -8247)``; ``ValueError`` unless a UTM tile id."""
    m = _TILE_NAME.match(name)
    if m is None:
        raise ValueError(f"tile name {name!r} is not <epsg 326xx/327xx>_<col>_<row>")
    return int(m[1]), int(m[2]), int(m[3])


def tile_bounds(name: str, tile_m: float) -> tuple[float, float, float, float]:
    """Footprint ``(minx, miny, maxx, maxy)`` in the tile's UTM CRS (y axis of ``row`` down)."""
    _, col, row = parse_tile_name(name)
    minx, maxy = col * tile_m, -row * tile_m
    return minx, maxy - tile_m, minx + tile_m, maxy


def naip_date(product: str) -> tuple[int, int, int]:
    """Date of a NAIP product string: last ``_`` token, first 8 characters (``YYYYMMDD``)."""
    return D.parse_yyyymmdd(product.split("_")[-1][:8])


# --- files --------------------------------------------------------------------------------
def _date_lines(path: Path) -> list[str]:
    """Non-blank, stripped lines of a date file (at least one)."""
    if not path.is_file():
        raise RawFormatError(path, "a date file of product names", "no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RawFormatError(path, "a UTF-8 text file of product names", str(err)) from err
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    check(bool(lines), path, "at least one product name", "an empty file")
    return lines


def read_series_dates(path: Path, token_from_end: int) -> np.ndarray:
    """``(T, 3)`` int16 dates of a Sentinel date file (token ``[-token_from_end]``)."""
    out = []
    for k, line in enumerate(_date_lines(path)):
        try:
            out.append(D.product_date(line, token_from_end))
        except ValueError as err:
            raise RawFormatError(
                path,
                f"product names whose '_' token [-{token_from_end}] starts with YYYYMMDD "
                f"(line {k + 1})",
                f"{line[:80]!r} ({err})",
            ) from err
    return D.as_array(out)


def read_naip_date(path: Path) -> np.ndarray:
    """``(3,)`` int16 date of the one NAIP product string in ``path``."""
    lines = _date_lines(path)
    check(len(lines) == 1, path, "one NAIP product string", f"{len(lines)} lines")
    try:
        return D.as_array([naip_date(lines[0])])[0]
    except ValueError as err:
        raise RawFormatError(
            path, "a NAIP product string ending in _YYYYMMDD", f"{lines[0][:80]!r} ({err})"
        ) from err


def png_header(path: Path, data: bytes) -> tuple[int, int, int, int]:
    """``(width, height, channels, bit_depth)`` of a PNG after checking every chunk's CRC.

    Raises :class:`RawFormatError` for a missing signature, a truncated chunk, a bad CRC or
    a missing ``IEND`` (GDAL decodes a truncated PNG silently, so this is checked here).
    """
    check(data[:8] == PNG_SIGNATURE, path, "a PNG file (PNG signature)", repr(data[:8]))
    pos, header = 8, None
    while True:
        if pos + 12 > len(data):
            raise RawFormatError(path, "a complete PNG ending in an IEND chunk", "truncated file")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise RawFormatError(path, "a complete PNG chunk", f"truncated {kind!r} chunk")
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[pos + 4 : end]) != crc:
            raise RawFormatError(path, f"a valid CRC for PNG chunk {kind!r}", "a corrupt chunk")
        if kind == b"IHDR":
            check(length == 13, path, "a 13-byte PNG IHDR chunk", f"{length} bytes")
            width, height, depth, colour = struct.unpack(">IIBB", data[pos + 8 : pos + 18])
            header = width, height, PNG_CHANNELS.get(colour, 0), depth
        if kind == b"IEND":
            break
        pos = end + 4
    check(header is not None, path, "a PNG IHDR chunk", "none")
    assert header is not None
    return header


def _read_png(path: Path, spec: ModalitySpec, px: int) -> np.ndarray:
    """``(C, H, W)`` uint8 of a NAIP PNG after checking its bands, depth and size."""
    if not path.is_file():
        raise RawFormatError(path, "a NAIP PNG", "no such file")
    data = path.read_bytes()
    width, height, channels, depth = png_header(path, data)
    c = len(spec.bands)
    want = f"a {c}-band 8-bit ({spec.dtype}) PNG ({', '.join(spec.bands)})"
    check((channels, depth) == (c, 8), path, want, f"{channels} band(s) of {depth} bit")
    check((height, width) == (px, px), path, f"{px}x{px} pixels", f"{height}x{width}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with MemoryFile(data) as mem, mem.open() as src:
                out = src.read()
    except rasterio.errors.RasterioError as err:
        raise RawFormatError(path, "a readable PNG", str(err)) from err
    check(out.shape == (c, px, px), path, f"{c}x{px}x{px} decoded values", out.shape)
    # a 4-band PNG is RGBA-typed; NIR constant at 0 or 255 over the whole tile is an alpha
    # channel of an RGB export, not a measurement
    last = out[-1]
    constant = c == 4 and last.min() == last.max() and int(last[0, 0]) in (0, 255)
    check(not constant, path, f"band {c} {spec.bands[-1]} values", f"{int(last[0, 0])} on every "
          "pixel (an alpha channel of an RGB image?)")  # fmt: skip
    return out.astype(spec.dtype, copy=False)


def _read_tif(
    path: Path, bands: int, px: int, dtype: str, why: str
) -> tuple[np.ndarray, tuple[float, float, float, float], CRS]:
    """``(bands, px, px)`` values, bounds and CRS of a GeoTIFF after checking its profile; the
    pixels at a band's declared no-data value or under an internal mask are blanked
    (:mod:`maestro.data.nodata`), scale / offset tags applied, the grid north-up
    (:mod:`maestro.data.geotiff`, D25)."""
    if not path.is_file():
        raise RawFormatError(path, "a GeoTIFF", "no such file")
    try:
        with rasterio.open(path) as src:
            check(src.count == bands, path, f"{bands} bands{why}", f"{src.count} bands")
            size = (src.height, src.width)
            check(size == (px, px), path, f"{px}x{px} pixels", f"{size[0]}x{size[1]}")
            check(src.crs is not None, path, "a CRS (the tile's UTM zone)", "no CRS")
            bounds, crs = tuple(src.bounds), src.crs
            # no-data pixels: NaN in the float S1 dB series, 0 in S2 (no mask declared; D22)
            data, _ = G.read_values(src, path, dtype)
    except rasterio.errors.RasterioError as err:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        raise RawFormatError(path, "a readable GeoTIFF", f"{err}{cause}") from err
    return to_storage(data, dtype, path), bounds, crs  # type: ignore[return-value]


def crs_name(crs: CRS) -> str:
    """``"EPSG:32610"`` when the CRS has an EPSG code, else its WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


# --- reader -------------------------------------------------------------------------------
class Reader:
    """S2-NAIP urban raw reader (implements :class:`maestro.data.sample.RawReader`).

    The split CSVs are read at construction; ``index`` reads the S2/S1 date files (no
    raster); ``read`` opens the PNG and GeoTIFFs of one tile.
    """

    def __init__(self, store: StoreSpec, root: Path) -> None:
        self.store = store
        self.root = Path(root)
        stored = [m.name for m in store.stored_modalities]
        if sorted(stored) != sorted(RASTER_FILES) or store.modality("aerial").temporal:
            raise ValueError(
                f"S2-NAIP reader: store {store.name!r} must store {sorted(RASTER_FILES)} "
                f"(aerial single-date), found {stored}"
            )
        self._splits = self._read_splits()

    def _read_splits(self) -> dict[str, str]:
        """name -> split, in CSV order (train, val, test)."""
        out: dict[str, str] = {}
        for split in SPLITS:
            path = self.root / split_csv(split)
            if not path.is_file():
                raise RawFormatError(path, "a split CSV with column name", "no such file")
            try:
                df = pd.read_csv(path, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
                raise RawFormatError(path, "a CSV with column name", str(err)) from err
            check("name" in df.columns, path, "a column name", list(df.columns))
            for name in df["name"].str.strip():
                ok = bool(name) and not {"/", "\\"} & set(name) and name not in {".", ".."}
                check(ok, path, "tile names usable as file stems", repr(name))
                check(
                    name not in out, path, f"{name} in one split only", f"also in {out.get(name)}"
                )
                out[name] = split
        return out

    def _path(self, rel: PurePosixPath) -> Path:
        return self.root / rel

    def _series(self, modality: str, name: str) -> np.ndarray:
        token = DATE_FILES[modality][1]
        return read_series_dates(self._path(dates_path(modality, name)), token)

    def index(self) -> list[SampleRef]:
        """Every tile of the split CSVs; ``ndates`` = lines of its S2/S1 date files."""
        temporal = [m.name for m in self.store.stored_modalities if m.temporal]
        return [
            SampleRef(
                sample_id=name,
                splits={"default": split},
                ndates={m: len(self._series(m, name)) for m in temporal},
            )
            for name, split in self._splits.items()
        ]

    def read(self, ref: SampleRef) -> RawSample:
        """One tile: NAIP ``(1, 4, H, W)`` uint8, S2 ``(T, 10, h, w)`` uint16, S1 ``(T, 2, h, w)``
        float32 dB, their dates (NAIP date = ``ref_date``), S2 bounds and CRS."""
        name = ref.sample_id
        ref_date = read_naip_date(self._path(dates_path("aerial", name)))  # (3,)
        rasters: dict[str, np.ndarray] = {}
        dates: dict[str, np.ndarray] = {}
        geo: dict[str, tuple[Path, tuple[float, float, float, float], CRS]] = {}
        for spec in self.store.stored_modalities:
            px = spec.pixels(self.store.tile_m)
            path = self._path(raster_path(spec.name, name))
            if not spec.temporal:
                rasters[spec.name] = _read_png(path, spec, px)[None]  # (1, C, H, W)
                dates[spec.name] = ref_date[None].copy()
                continue
            date_file = self._path(dates_path(spec.name, name))
            stamps = self._series(spec.name, name)  # (T, 3)
            t, c = len(stamps), len(spec.bands)
            why = f" ({t} dates in {date_file} x {c} bands {', '.join(spec.bands)})"
            flat, bounds, crs = _read_tif(path, t * c, px, spec.dtype, why)
            series = rearrange(flat, "(t c) h w -> t c h w", t=t)
            order = np.lexsort((stamps[:, 1], stamps[:, 0]))  # stable: time order
            rasters[spec.name] = np.ascontiguousarray(series[order])
            dates[spec.name] = stamps[order]
            geo[spec.name] = (path, bounds, crs)
        ref_path, bounds, crs = geo[GEO_REFERENCE]
        self._check_geo(name, ref_path, bounds, crs, geo)
        return RawSample(
            sample_id=name,
            rasters=rasters,
            dates=dates,
            invalid={},
            label=None,
            ref_date=ref_date,
            bounds=bounds,
            crs=crs_name(crs),
        )

    def _check_geo(
        self,
        name: str,
        ref_path: Path,
        bounds: tuple[float, float, float, float],
        crs: CRS,
        geo: dict[str, tuple[Path, tuple[float, float, float, float], CRS]],
    ) -> None:
        """Footprint spans ``tile_m``; every GeoTIFF shares the CRS and footprint of S2;
        a ``<epsg>_<col>_<row>`` name agrees with the CRS and the footprint
        (:func:`tile_bounds`)."""
        tile = self.store.tile_m
        tol = 0.01 * max(self.store.modality(m).resolution_m for m in geo)
        extent = (bounds[2] - bounds[0], bounds[3] - bounds[1])
        check(
            max(abs(e - tile) for e in extent) <= tol,
            ref_path,
            f"a footprint of {tile} x {tile} m",
            f"{extent[0]} x {extent[1]} m",
        )
        try:
            epsg = parse_tile_name(name)[0]
        except ValueError:
            epsg = None
        if epsg is not None:
            check(crs.to_epsg() == epsg, ref_path, f"CRS EPSG:{epsg} (tile {name})", crs_name(crs))
            # the tile's own footprint: another tile's files filed under this name are refused
            want = tile_bounds(name, tile)
            half = 0.5 * self.store.modality(GEO_REFERENCE).resolution_m
            check(
                np.allclose(bounds, want, rtol=0.0, atol=half),
                ref_path,
                f"the footprint of tile {name} {want} (to half a pixel, {half:g} m)",
                bounds,
            )
        for path, other_bounds, other_crs in geo.values():
            if path == ref_path:
                continue
            check(
                other_crs == crs,
                path,
                f"the CRS of {ref_path} ({crs_name(crs)})",
                crs_name(other_crs),
            )
            close = np.allclose(other_bounds, bounds, rtol=0.0, atol=tol)
            check(close, path, f"the footprint of {ref_path} {bounds}", other_bounds)
