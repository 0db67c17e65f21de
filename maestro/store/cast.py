"""The one rule by which every reader brings raw values to a store's declared storage dtype.

A raw file may hold another dtype than the one a modality declares (a PASTIS-HD S2 series
saved as int32, an S1 series as float64). Casting silently is how values are lost: int32
40000 becomes int16 -25536, float64 1e6 becomes float16 inf. So:

- the declared dtype, or one that casts to it losslessly (``np.can_cast(..., "safe")``):
  cast;
- a dtype of the same kind (integer to integer, float to float): cast only when every value
  fits (integers within the target's range, finite floats within its finite range; NaN stays
  NaN), else :class:`~maestro.data.errors.RawFormatError` naming the file, the band (or
  channel), the value and the range;
- another kind (float to integer, integer to float16, ...): an error naming both dtypes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from maestro.data.errors import RawFormatError


def _band(index: tuple[int, ...], shape: tuple[int, ...], bands: Sequence[str] | None) -> str:
    """Name of the channel at ``index``: axis -3 of a ``(..., C, H, W)`` array."""
    if len(shape) < 3:
        return "the raster"
    c = index[-3]
    name = bands[c] if bands is not None and c < len(bands) else f"channel {c} (0-based)"
    return f"band {name}" + (f" (date {index[-4]})" if len(shape) >= 4 else "")


def _first_outside(arr: np.ndarray, lo: float, hi: float) -> tuple[int, ...] | None:
    bad = (arr < lo) | (arr > hi)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))


def to_storage(
    arr: np.ndarray,
    dtype: str | np.dtype,
    path: str | os.PathLike[str],
    bands: Sequence[str] | None = None,
) -> np.ndarray:
    """``arr`` in ``dtype`` (an in-memory copy when ``arr`` is memory-mapped), by the rule above.

    ``bands`` names axis -3 of a ``(..., C, H, W)`` array in error messages.
    """
    target = np.dtype(dtype)
    src = np.asarray(arr)
    if src.dtype == target or np.can_cast(src.dtype, target, "safe"):
        return np.array(src, dtype=target)
    kinds = {src.dtype.kind, target.kind}
    same_kind = kinds <= {"i", "u"} or kinds == {"f"}
    if not same_kind:
        raise RawFormatError(
            path,
            f"dtype {target} (or a dtype whose values cast to it without loss)",
            f"dtype {src.dtype}",
        )
    if target.kind == "f":
        info = np.finfo(target)
        finite = np.where(np.isfinite(src), src, 0)
        where = _first_outside(finite, float(info.min), float(info.max))
    else:
        info = np.iinfo(target)
        where = _first_outside(src, info.min, info.max)
    if where is not None:
        raise RawFormatError(
            path,
            f"values within the {target} range [{info.min}, {info.max}] (stored as {target})",
            f"{src[where].item()!r} in {_band(where, src.shape, bands)} at index {list(where)} "
            f"(file dtype {src.dtype})",
        )
    return src.astype(target)
