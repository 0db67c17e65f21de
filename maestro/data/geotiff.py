"""What a GeoTIFF's profile says about its values, checked before they are stored (D25).

A reader that takes ``src.read()`` as it is trusts four things the file may say otherwise:

- **the grid**: a geotransform with a rotation term (or x decreasing) puts the array's rows
  and columns along other axes than the aerial image and the label, yet its bounds, an
  envelope, still match the footprint (:func:`check_north_up`);
- **packed values**: GDAL scale / offset tags (``value = raw x scale + offset``) of an S1
  band exported as integers (:func:`unpack`);
- **band order**: band descriptions (:func:`check_band_names`) or a colour interpretation
  (:func:`check_colour_order`) that put our bands in another order;
- **invalid pixels**: an internal (per-dataset) mask, besides a no-data value
  (:func:`mask_holes`; no-data values: :mod:`maestro.data.nodata`).

The checks take an open ``rasterio`` dataset and its path, which the error names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.io import DatasetReader

from maestro.data.errors import check
from maestro.data.nodata import blank_nodata, nodata_mask

__all__ = [
    "check_band_names",
    "check_colour_order",
    "check_north_up",
    "mask_holes",
    "merge_holes",
    "read_values",
    "unpack",
]


def check_north_up(src: DatasetReader, path: Path) -> None:
    """The geotransform maps columns to +x and rows to -y, without rotation or shear."""
    t = src.transform
    ok = t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0
    check(
        ok,
        path,
        "a north-up grid (geotransform without rotation: x along columns, y down the rows)",
        f"geotransform (a, b, c, d, e, f) = {tuple(round(v, 6) for v in t[:6])}",
    )


def unpack(src: DatasetReader, data: np.ndarray, dtype: str, path: Path) -> np.ndarray:
    """``data`` with the bands' scale / offset tags applied (float storage only).

    Raises:
        RawFormatError: tags other than 1 / 0 on a file stored as integers (its values
            would no longer be the distributed integers).
    """
    scales, offsets = np.asarray(src.scales, float), np.asarray(src.offsets, float)
    if np.all(scales == 1) and np.all(offsets == 0):
        return data
    check(
        np.dtype(dtype).kind == "f",
        path,
        f"{dtype} values as distributed (no scale / offset tags)",
        f"scales {scales.tolist()[:4]}, offsets {offsets.tolist()[:4]}",
    )
    return data.astype(np.float64) * scales[:, None, None] + offsets[:, None, None]


def check_band_names(src: DatasetReader, path: Path, bands: Sequence[str]) -> None:
    """Band descriptions that name exactly our bands must list them in our order.

    Files without descriptions, or with other names (``Band 1``, ``B02_20190101``), are not
    judged: nothing in them says the order.
    """
    found = [(d or "").strip() for d in src.descriptions]
    if len(found) != len(bands) or sorted(f.lower() for f in found) != sorted(
        b.lower() for b in bands
    ):
        return
    check(
        [f.lower() for f in found] == [b.lower() for b in bands],
        path,
        f"bands in the order {', '.join(bands)}",
        f"band descriptions {', '.join(found)}",
    )


_COLOURS = {"R": ColorInterp.red, "G": ColorInterp.green, "B": ColorInterp.blue}


def check_colour_order(src: DatasetReader, path: Path, bands: Sequence[str]) -> None:
    """A file whose colour interpretation names red, green and blue once each must have them
    where ``bands`` has R, G and B (a B, G, R export says so in its header).

    Not for TreeSatAI-TS aerial images, whose files declare RGB for NIR, G, B, R bands.
    """
    found = list(src.colorinterp)
    if any(found.count(c) != 1 for c in _COLOURS.values()) or not set(_COLOURS) <= set(bands):
        return
    check(
        all(found[bands.index(name)] == c for name, c in _COLOURS.items()),
        path,
        f"bands in the order {', '.join(bands)}",
        f"colour interpretation {', '.join(c.name for c in found)}",
    )


def mask_holes(src: DatasetReader) -> np.ndarray | None:
    """``(bands, H, W)`` bool, True where an internal (per-dataset) mask marks a pixel invalid.

    None when no band has such a mask (a no-data value alone is read by
    :func:`maestro.data.nodata.nodata_mask`). An *alpha* mask is not one: GDAL reads the
    fourth sample of a 4-band RGB-photometric file (R, G, B, NIR aerial images) as alpha,
    and its mask would drop every pixel whose NIR is 0.
    """
    flags = src.mask_flag_enums
    if not any(MaskFlags.per_dataset in f and MaskFlags.alpha not in f for f in flags):
        return None
    holes = src.read_masks() == 0
    return holes if holes.any() else None


def merge_holes(*holes: np.ndarray | None) -> np.ndarray | None:
    """Union of hole masks (None entries: no holes)."""
    present = [h for h in holes if h is not None]
    if not present:
        return None
    out = present[0].copy()
    for h in present[1:]:
        out |= h
    return out


def read_values(
    src: DatasetReader, path: Path, dtype: str, blank: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """All bands of a north-up GeoTIFF, unpacked, with its missing pixels.

    Returns the ``(bands, H, W)`` values (scale / offset applied; with ``blank``, the pixels
    at a declared no-data value or under an internal mask set to NaN in float storage, 0 in
    integer storage: :func:`maestro.data.nodata.blank_nodata`) and those pixels (None when
    there are none, or without ``blank``: labels and masks keep their values).
    """
    check_north_up(src, path)
    data = src.read()
    holes = merge_holes(nodata_mask(data, src.nodatavals), mask_holes(src)) if blank else None
    return blank_nodata(unpack(src, data, dtype, path), holes, dtype), holes
