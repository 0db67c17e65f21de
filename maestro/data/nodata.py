"""GeoTIFF no-data values: pixels a file declares as not measured.

``rasterio`` reports a file's no-data value per band (``src.nodatavals``, None where unset).
Read as they are, those pixels (-9999 in an S1 band, 0 at an S2 swath edge, -99999 in a DEM
void) would be stored and trained on as measurements. Readers turn them into missing values
(docs/decisions.md D22): NaN in float storage (then handled like every non-finite value,
D17), and for integer modalities with an invalid mask, flagged in that mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def nodata_mask(data: np.ndarray, nodatavals: Sequence[float | None]) -> np.ndarray | None:
    """``(bands, H, W)`` bool, True where a band holds its declared no-data value (None: none)."""
    if all(v is None for v in nodatavals):
        return None
    holes = np.zeros(data.shape, dtype=bool)
    for b, v in enumerate(nodatavals):
        if v is not None:
            holes[b] = np.isnan(data[b]) if np.isnan(v) else data[b] == v
    return holes if holes.any() else None


def blank_nodata(data: np.ndarray, holes: np.ndarray | None, storage_dtype: str) -> np.ndarray:
    """``data`` with its no-data pixels set to NaN (float storage) or 0 (integer storage: the
    caller flags them as invalid), before the storage cast, which would refuse a no-data value
    outside the storage range."""
    if holes is None:
        return data
    out = data.astype(np.float32) if np.dtype(storage_dtype).kind == "f" else data.copy()
    out[holes] = np.nan if out.dtype.kind == "f" else 0
    return out
