"""How a store is laid out: its arrays, chunks and shards, and how they are created.

The layout itself is documented in :mod:`maestro.store.zarr_store`; this module holds the
constants and functions the converter writes it with (re-exported there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from maestro.datasets.spec import ModalitySpec, StoreSpec

#: 2: crop-sized inner chunks, ``crs`` and ``geotransform`` attributes, the tile index.
#: 3: Zarr ``dimension_names`` on every array and 1-D coordinate arrays (``band``, ``bound``,
#: ``class``, ``ymd``), so that ``xarray.open_zarr(store, group=...)`` opens a store.
VERSION = 3
#: The GeoParquet tile index inside the store (:mod:`maestro.store.tile_index`).
TILE_INDEX_NAME = "tile_index.parquet"
ZSTD_LEVEL = 3
#: Plain chunks of the small metadata arrays hold this many shards' worth of samples.
META_CHUNK_SHARDS = 32
#: Split name -> code stored in ``split_<scheme>``; samples outside a scheme get -1.
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
NO_SPLIT = -1


@dataclass(frozen=True)
class ArrayLayout:
    """One store array: per-sample ``shape`` (without the leading N axis), dtype and
    dimension names ``dims`` (the leading one is always ``sample``).

    ``sharded`` arrays have inner chunks of one sample, ``(1, *chunk)`` (``chunk`` = None:
    the whole sample), and ``shard_samples`` samples per shard file; the others have plain
    chunks of ``META_CHUNK_SHARDS * shard_samples`` samples.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    sharded: bool
    fill_value: Any = 0
    chunk: tuple[int, ...] | None = None
    dims: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.dims) != len(self.shape):
            raise ValueError(f"dims {self.dims} do not name every axis of shape {self.shape}")


#: Names of the ``bounds`` axis and of a date's (year, month, day) axis (coordinate arrays).
BOUND_NAMES = ("minx", "miny", "maxx", "maxy")
YMD_NAMES = ("year", "month", "day")


def chunk_px(spec: StoreSpec, m: ModalitySpec) -> int:
    """Side of an inner chunk of ``m``: one crop's pixels if crops are smaller than tiles."""
    tile = m.pixels(spec.tile_m)
    return min(tile, m.pixels(spec.crop_m)) if spec.crop_m < spec.tile_m else tile


def layout(spec: StoreSpec, tmax: dict[str, int], id_bytes: int) -> dict[str, ArrayLayout]:
    """Every array of a store, keyed by its path in the group.

    Args:
        spec: the store declaration (sizes derive from ``spec.tile_m``, chunks from ``crop_m``).
        tmax: modality -> padded number of dates (1 for single-date modalities).
        id_bytes: longest UTF-8 sample id, in bytes.
    """
    out: dict[str, ArrayLayout] = {
        "sample_id": ArrayLayout((id_bytes,), np.dtype("uint8"), False, dims=("id_byte",)),
        "ref_date": ArrayLayout((3,), np.dtype("int16"), False, dims=("ymd",)),
        "bounds": ArrayLayout((4,), np.dtype("float64"), False, float("nan"), dims=("bound",)),
    }
    for scheme in spec.split_schemes:
        out[f"split_{scheme}"] = ArrayLayout((), np.dtype("int8"), False, NO_SPLIT)
    if spec.label is None:
        pass  # pretraining-only store
    elif spec.label.kind == "fractions":
        out["label"] = ArrayLayout(
            (len(spec.label.names),), np.dtype("float32"), False, dims=("class",)
        )
    else:
        if spec.label.grid_modality is None:
            raise ValueError(f"store {spec.name!r}: a raster label needs a grid_modality")
        grid = spec.modality(spec.label.grid_modality)
        p, c = grid.pixels(spec.tile_m), chunk_px(spec, grid)
        out["label"] = ArrayLayout(
            (p, p), np.dtype(spec.label.dtype), True, 0, (c, c), dims=("y", "x")
        )
    for m in spec.stored_modalities:
        t, p, c, n_bands = tmax[m.name], m.pixels(spec.tile_m), chunk_px(spec, m), len(m.bands)
        out[f"{m.name}/data"] = ArrayLayout(
            (t, n_bands, p, p), np.dtype(m.dtype), True, 0, (t, n_bands, c, c),
            dims=("date", "band", "y", "x"),
        )  # fmt: skip
        out[f"{m.name}/dates"] = ArrayLayout((t, 3), np.dtype("int16"), True, dims=("date", "ymd"))
        out[f"{m.name}/ndates"] = ArrayLayout((), np.dtype("int16"), False)
        if m.has_mask:
            out[f"{m.name}/invalid"] = ArrayLayout(
                (t, p, p), np.dtype("bool"), True, False, (t, c, c), dims=("date", "y", "x")
            )
    return out


def coordinates(spec: StoreSpec) -> dict[str, tuple[str, ...]]:
    """The 1-D string coordinate arrays of a store, by path: ``{path: values}``; the array's
    one dimension is its own name (``s2/band`` has dimension ``band``), as xarray expects."""
    out: dict[str, tuple[str, ...]] = {"bound": BOUND_NAMES, "ymd": YMD_NAMES}
    if spec.label is not None and spec.label.kind == "fractions":
        out["class"] = tuple(spec.label.names)
    for m in spec.stored_modalities:
        out[f"{m.name}/band"] = tuple(m.bands)
        out[f"{m.name}/ymd"] = YMD_NAMES
    return out


def geotransform(m: ModalitySpec) -> dict[str, Any]:
    """The ``geotransform`` attribute of a modality group: how its pixels map to the ground."""
    return {
        "pixel_size_m": m.resolution_m,
        "footprint": "bounds",
        "convention": (
            "north-up grid filling the sample footprint bounds = (minx, miny, maxx, maxy) in "
            "the store CRS (the sample's own CRS when the store crs is ''): pixel (row r, col "
            "c) has its top-left corner at (minx + c * pixel_size_m, maxy - r * pixel_size_m)"
        ),
        "affine": ["pixel_size_m", 0, "minx", 0, "-pixel_size_m", "maxy"],
    }


def create_arrays(
    group: zarr.Group,
    arrays: dict[str, ArrayLayout],
    n: int,
    shard_samples: int,
    coords: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, zarr.Array]:
    """Create every array of ``arrays`` with ``n`` samples in ``group`` (returned by path)
    and write the coordinate arrays ``coords`` (:func:`coordinates`)."""
    for path, values in (coords or {}).items():
        arr = group.create_array(
            name=path, shape=(len(values),), dtype=str, dimension_names=(path.split("/")[-1],)
        )
        arr[...] = np.array(values, dtype=object)
    out = {}
    for path, lay in arrays.items():
        chunk = lay.chunk or lay.shape
        # one shard spans every per-sample axis, rounded up to whole inner chunks
        shard = (shard_samples, *(-(-s // c) * c for s, c in zip(lay.shape, chunk, strict=True)))
        meta = (shard_samples * META_CHUNK_SHARDS, *lay.shape)
        inner = (1, *chunk)
        out[path] = group.create_array(
            name=path,
            shape=(n, *lay.shape),
            dtype=lay.dtype,
            chunks=inner if lay.sharded else meta,
            shards=shard if lay.sharded else None,
            compressors=ZstdCodec(level=ZSTD_LEVEL),
            fill_value=lay.fill_value,
            dimension_names=("sample", *lay.dims),
        )
    return out


def encode_ids(ids: Sequence[str], width: int) -> np.ndarray:
    """Sample ids -> ``(len(ids), width)`` uint8, UTF-8, NUL-padded."""
    out = np.zeros((len(ids), width), dtype=np.uint8)
    for k, sid in enumerate(ids):
        raw = sid.encode("utf-8")
        if len(raw) > width or b"\0" in raw:
            raise ValueError(f"sample id {sid!r} does not fit {width} NUL-free UTF-8 bytes")
        out[k, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def decode_ids(arr: np.ndarray) -> list[str]:
    """Inverse of :func:`encode_ids`: ``(N, L)`` uint8 -> N strings."""
    return [bytes(row).rstrip(b"\0").decode("utf-8") for row in np.asarray(arr, np.uint8)]
