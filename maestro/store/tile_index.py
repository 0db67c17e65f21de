"""The tile index of a store: one GeoParquet row per sample (``tile_index.parquet``).

Columns, in store order:

- ``index`` (int64): the sample's position in the store arrays;
- ``sample_id`` (str);
- ``split_<scheme>`` (str or null): "train", "val", "test", or null outside the scheme;
- ``ref_date`` (datetime64[ms]): ``(year, day_of_year, hour)`` of the sample; null if unknown;
- ``geometry``: the footprint box from ``bounds``, null when the reader gave no bounds.

In a store with one CRS (``StoreSpec.crs``) the geometries are in that CRS. When the tiles
have their own CRS (``StoreSpec.crs == ""``, e.g. the UTM zones of S2-NAIP) the geometries
are reprojected to EPSG:4326 (the four corners; tiles are at most a few km, so the
curvature of the edges is negligible), and the original ``crs`` and bounds (``minx``,
``miny``, ``maxx``, ``maxy``, in that CRS) are added as columns.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from maestro.datasets.spec import StoreSpec
from maestro.store.layout import TILE_INDEX_NAME

__all__ = [
    "GEOGRAPHIC_CRS",
    "TILE_INDEX_NAME",
    "build_tile_index",
    "read_tile_index",
    "write_tile_index",
]

#: CRS of the geometries of a store whose tiles have their own CRS.
GEOGRAPHIC_CRS = "EPSG:4326"
_SPLIT_NAMES = {0: "train", 1: "val", 2: "test"}


def _ref_dates(ref_date: np.ndarray) -> pd.Series:
    """``(N, 3)`` (year, day of year, hour) -> timestamps (NaT where the year is 0)."""
    out = [
        pd.NaT
        if int(y) <= 0
        else pd.Timestamp(dt.datetime(int(y), 1, 1) + dt.timedelta(days=int(d) - 1, hours=int(h)))
        for y, d, h in np.asarray(ref_date, np.int64)
    ]
    return pd.Series(pd.to_datetime(out), dtype="datetime64[ms]")


def build_tile_index(
    spec: StoreSpec,
    sample_ids: Sequence[str],
    splits: Mapping[str, np.ndarray],
    ref_date: np.ndarray,
    bounds: np.ndarray,
    crs: Sequence[str | None],
) -> gpd.GeoDataFrame:
    """The tile index of a store (see the module docstring).

    Args:
        spec: the store declaration (its ``crs`` and split schemes).
        sample_ids: N ids in store order.
        splits: scheme -> ``(N,)`` int8 split codes (-1 = not in the scheme).
        ref_date: ``(N, 3)`` int16.
        bounds: ``(N, 4)`` float64 (minx, miny, maxx, maxy), NaN rows when unknown.
        crs: per-sample CRS of ``bounds`` (None = unknown); used when ``spec.crs`` is "".
    """
    n = len(sample_ids)
    bounds = np.asarray(bounds, np.float64).reshape(n, 4)
    columns: dict[str, object] = {
        "index": np.arange(n, dtype=np.int64),
        "sample_id": pd.Series(list(sample_ids), dtype=object),
    }
    for scheme in spec.split_schemes:
        codes = np.asarray(splits[scheme])
        columns[f"split_{scheme}"] = pd.Series(
            [_SPLIT_NAMES.get(int(c)) for c in codes], dtype=object
        )
    columns["ref_date"] = _ref_dates(ref_date)
    known = np.isfinite(bounds).all(axis=1)
    boxes = np.full(n, None, dtype=object)
    if known.any():
        boxes[known] = shapely.box(*bounds[known].T)
    if spec.crs:
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(boxes, crs=spec.crs))
    tile_crs = [c if k and c else None for c, k in zip(crs, known, strict=True)]
    geoms = gpd.GeoSeries(boxes, crs=GEOGRAPHIC_CRS)
    for code in sorted({c for c in tile_crs if c is not None}):
        rows = np.array([c == code for c in tile_crs])
        geoms[rows] = gpd.GeoSeries(boxes[rows], crs=code).to_crs(GEOGRAPHIC_CRS).values
    columns["crs"] = pd.Series(tile_crs, dtype=object)
    for k, name in enumerate(("minx", "miny", "maxx", "maxy")):
        columns[name] = bounds[:, k]
    return gpd.GeoDataFrame(columns, geometry=geoms)


def write_tile_index(frame: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``frame`` as GeoParquet at ``path`` (deterministic bytes for the same frame)."""
    frame.to_parquet(Path(path), index=False, compression="zstd")


def read_tile_index(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Read a tile index written by :func:`write_tile_index`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no tile index (stores converted before format version 2 have none; "
            "convert again)"
        )
    return gpd.read_parquet(path)
