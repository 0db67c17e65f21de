"""The converted dataset store: one sharded Zarr v3 group per raw distribution.

Layout of ``<name>.zarr`` (N samples, ordered by default-scheme split then sample id):

====================  ==========================  =================================================
path                  shape, dtype                content
====================  ==========================  =================================================
``sample_id``         (N, L) uint8                UTF-8 bytes of the id, NUL-padded (see below)
``split_<scheme>``    (N,) int8                   0 train, 1 val, 2 test, -1 not in the scheme
``ref_date``          (N, 3) int16                (year, day_of_year, hour)
``bounds``            (N, 4) float64              (minx, miny, maxx, maxy), NaN when unknown
``label``             (N, K) float32              class area fractions ("fractions" labels)
``label``             (N, P, P) label dtype       raw class raster ("raster" labels)
``<mod>/data``        (N, Tmax, C, H, W)          storage dtype, file band order, 0-padded dates
``<mod>/dates``       (N, Tmax, 3) int16          acquisition dates, 0-padded
``<mod>/ndates``      (N,) int16                  real acquisitions of the sample (<= Tmax)
``<mod>/invalid``     (N, Tmax, H, W) bool        cloud/snow mask (only if the modality has one)
``tile_index.parquet``  GeoParquet                one row per sample (``maestro.store.tile_index``)
====================  ==========================  =================================================

Per-sample arrays (``<mod>/data``, ``<mod>/dates``, ``<mod>/invalid``, raster ``label``) are
sharded: one shard file per ``shard_samples`` samples (what one converter task writes at
once) and inner chunks (what a read decodes) of one sample. When a training crop is smaller
than the tile (``crop_m < tile_m``, e.g. PASTIS-HD's 160 m crops of 1280 m tiles) the
inner chunks are also tiled spatially, one crop's pixels per side, so that a crop decodes a
few chunks instead of the whole tile; otherwise an inner chunk is a whole sample. The small
metadata arrays (ids, splits, ndates, ref_date, bounds, fraction labels) use plain chunks of
``META_CHUNK_SHARDS * shard_samples`` samples, which keeps the file count low; readers load
them once per process. Everything is zstd-compressed and the metadata is consolidated into
the root ``zarr.json``.

Sample ids are a NUL-padded uint8 array rather than a Zarr string array: zarr 3.1.6 flags
fixed-width unicode (``<U``) as ``UnstableSpecificationWarning`` (no v3 spec), and a uint8
array is readable by every Zarr v3 implementation. Putting 10^5 ids in the attributes would
bloat the consolidated metadata that every reader parses.

Root attributes: ``format``, ``version``, ``store_spec`` (``spec.to_dict``), ``n_samples``,
``splits`` ({scheme: {split: count}}), ``crs`` (the store CRS; "" = each tile has its own,
recorded in the tile index), ``created_by``. Modality group attributes: ``bands``,
``wavelengths_um``, ``resolution_m``, ``dtype``, ``scaling``, ``tmax``, ``geotransform``
(pixel size and footprint convention, see :func:`geotransform`) and ``stats`` ({scheme:
{"mean", "std", "count"}} per band in file order, on scaled values of the train split,
excluding padded dates, NaNs and invalid pixels).

Every array names its axes (Zarr ``dimension_names``: ``sample``, ``date``, ``band``,
``y``, ``x``, ``ymd``, ``bound``, ``class``, ``id_byte``) and the labelled axes have 1-D string
coordinate arrays of the same name (``<mod>/band``, ``<mod>/ymd``, ``ymd``, ``bound``,
``class``), so ``xarray.open_zarr(store)`` and ``xarray.open_zarr(store, group="s2")`` open
the store with named dimensions (``ds.data.sel(band="B4")``). Dates stay per sample
(``dates``: sample × date × ymd), as they differ between samples.

A ``maestro_manifest.json`` inside the store lists every other file (the tile index
included) with its size and sha256, plus one content hash (:func:`store_hash`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from maestro.datasets.spec import StoreSpec, store_from_dict
from maestro.store.heap import steady_heap
from maestro.store.layout import (
    META_CHUNK_SHARDS,
    NO_SPLIT,
    SPLIT_CODES,
    TILE_INDEX_NAME,
    VERSION,
    ZSTD_LEVEL,
    ArrayLayout,
    chunk_px,
    coordinates,
    create_arrays,
    decode_ids,
    encode_ids,
    geotransform,
    layout,
)
from maestro.store.manifest import (
    FORMAT,
    MANIFEST_NAME,
    store_hash,
    verify_manifest,
    write_manifest,
)
from maestro.store.shard_io import ShardedArray

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "META_CHUNK_SHARDS",
    "NO_SPLIT",
    "SPLIT_CODES",
    "TILE_INDEX_NAME",
    "VERSION",
    "ZSTD_LEVEL",
    "ArrayLayout",
    "Store",
    "chunk_px",
    "coordinates",
    "create_arrays",
    "decode_ids",
    "encode_ids",
    "geotransform",
    "layout",
    "store_hash",
    "verify_manifest",
    "write_manifest",
]

#: ``(rows, cols)`` step-1 slices of a crop, in a modality's pixel grid.
Window = tuple[slice, slice]


# --- read side -----------------------------------------------------------------------------


class Store:
    """Read-only access to a converted store, one sample at a time.

    Only the path is kept until the first access, and the Zarr group is reopened in any
    new process (e.g. a forked DataLoader worker), so instances are safe to pass to
    workers and to pickle. Every read indexes a single sample: fancy indexing across
    shards is much slower in zarr-python 3.1 (measured: about 6x slower than single-sample
    reads). Per-sample arrays are read through :class:`~maestro.store.shard_io.ShardedArray`
    (one shard file, only the inner chunks of the requested window); the small metadata
    arrays (ndates, ref_date, bounds, fraction labels, splits, ids) are loaded whole once per
    process. Opening the group in a process also fixes glibc's heap thresholds there
    (:func:`maestro.store.heap.steady_heap`): without it, item reads cost up to twice as
    much in some processes.
    """

    def __init__(self, path: str | os.PathLike[str], in_memory: bool = False) -> None:
        self.path = Path(path)
        self.in_memory = in_memory
        self._group: zarr.Group | None = None
        self._pid: int | None = None
        self._cache: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "in_memory": self.in_memory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.in_memory = bool(state.get("in_memory", False))
        self._group, self._pid, self._cache = None, None, {}

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def __len__(self) -> int:
        return self.n_samples

    # --- opening -------------------------------------------------------------------------
    @property
    def group(self) -> zarr.Group:
        """The root Zarr group, opened read-only on first use in this process."""
        if self._group is None or self._pid != os.getpid():
            if not (self.path / "zarr.json").is_file():
                raise FileNotFoundError(f"{self.path}: not a Zarr v3 store (no zarr.json)")
            group = zarr.open_group(self.path, mode="r", zarr_format=3)
            attrs = group.attrs.asdict()
            if attrs.get("format") != FORMAT or attrs.get("version") != VERSION:
                raise ValueError(
                    f"{self.path}: expected a {FORMAT} v{VERSION} store, found format "
                    f"{attrs.get('format')!r} version {attrs.get('version')!r} (convert again)"
                )
            self._group, self._pid, self._cache = group, os.getpid(), {"attrs": attrs}
            steady_heap()  # item costs independent of the process's allocation history
        return self._group

    def _array(self, path: str) -> zarr.Array:
        group = self.group  # reopens (and clears the cache) in a new process
        key = f"array:{path}"
        if key not in self._cache:
            node = group[path]
            assert isinstance(node, zarr.Array)
            self._cache[key] = node
        return self._cache[key]

    def _small(self, path: str) -> np.ndarray:
        """A small metadata array, loaded whole once per process (read-only view)."""
        key = f"small:{path}"
        self.group  # noqa: B018 (a new process starts with an empty cache)
        if key not in self._cache:
            arr = np.asarray(self._array(path)[:])
            arr.flags.writeable = False
            self._cache[key] = arr
        return self._cache[key]

    def _sample(self, path: str, i: int, selection: tuple[slice, ...]) -> np.ndarray:
        """``array[i][selection]`` of a per-sample array, via the direct shard reader.

        With ``in_memory`` the whole sample is decoded on its first read and kept for the
        life of the process (small stores: the demo's fit in a few hundred MB), so later
        reads of any window cost a slice.
        """
        if self.in_memory:
            key = f"sample:{path}:{i}"
            self.group  # noqa: B018 (a new process starts with an empty cache)
            if key not in self._cache:
                full = self._read_sample(path, i, tuple(slice(None) for _ in selection))
                full.flags.writeable = False
                self._cache[key] = full
            return self._cache[key][selection].copy()
        return self._read_sample(path, i, selection)

    def _read_sample(self, path: str, i: int, selection: tuple[slice, ...]) -> np.ndarray:
        key = f"reader:{path}"
        self.group  # noqa: B018
        if key not in self._cache:
            self._cache[key] = ShardedArray.of(self._array(path), self.path / path)
        reader = self._cache[key]
        if reader is None:  # an array this module did not lay out: let zarr-python read it
            return np.asarray(self._array(path)[(i, *selection)])
        return reader.read(i, selection)

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes."""
        self.group  # noqa: B018 (opens, fills the cache)
        return self._cache["attrs"]

    # --- metadata ------------------------------------------------------------------------
    @property
    def spec(self) -> StoreSpec:
        """The StoreSpec the store was converted with."""
        attrs = self.attrs
        if "spec" not in self._cache:
            self._cache["spec"] = store_from_dict(attrs["store_spec"])
        return self._cache["spec"]

    @property
    def n_samples(self) -> int:
        """Number of samples N."""
        return int(self.attrs["n_samples"])

    @property
    def crs(self) -> str:
        """The store CRS ("" when every tile has its own, see :meth:`tile_index`)."""
        return str(self.attrs["crs"])

    @property
    def sample_ids(self) -> list[str]:
        """Sample ids in store order."""
        if "ids" not in self._cache:
            self._cache["ids"] = decode_ids(self._small("sample_id"))
        return self._cache["ids"]

    def split_codes(self, scheme: str) -> np.ndarray:
        """``(N,)`` int8 split codes of ``scheme`` (:data:`SPLIT_CODES`, -1 = not in it)."""
        if scheme not in self.spec.split_schemes:
            raise KeyError(
                f"{self.path}: no split scheme {scheme!r}; has {list(self.spec.split_schemes)}"
            )
        return self._small(f"split_{scheme}")

    def indices(self, scheme: str, splits: Sequence[str]) -> np.ndarray:
        """Sorted sample indices (int64) that ``scheme`` puts in any of ``splits``."""
        bad = [s for s in splits if s not in SPLIT_CODES]
        if bad:
            raise ValueError(f"unknown splits {bad}; expected a subset of {list(SPLIT_CODES)}")
        codes = [SPLIT_CODES[s] for s in splits]
        return np.flatnonzero(np.isin(self.split_codes(scheme), codes)).astype(np.int64)

    def stats(self, modality: str, scheme: str) -> dict[str, np.ndarray]:
        """Train-split statistics of scaled values, per band in file order.

        Returns ``{"mean": (C,) float64, "std": (C,) float64, "count": (C,) int64}``; mean
        and std are NaN for a band without any valid pixel.
        """
        raw = self.group[modality].attrs["stats"][scheme]
        as_float = lambda v: np.array([np.nan if x is None else x for x in v], np.float64)  # noqa: E731
        return {
            "mean": as_float(raw["mean"]),
            "std": as_float(raw["std"]),
            "count": np.asarray(raw["count"], dtype=np.int64),
        }

    def tile_index(self) -> gpd.GeoDataFrame:
        """The tile index (one row per sample, store order; see :mod:`maestro.store.tile_index`)."""
        # imported here: geopandas is not needed (and not loaded) by training reads
        from maestro.store.tile_index import read_tile_index

        self.group  # noqa: B018 (checks the format first)
        return read_tile_index(self.path / TILE_INDEX_NAME)

    # --- samples -------------------------------------------------------------------------
    def _check_index(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.n_samples:
            raise IndexError(f"{self.path}: sample index {i} out of range [0, {self.n_samples})")
        return i

    def ndates(self, i: int, modality: str) -> int:
        """Number of real acquisitions of sample ``i`` for ``modality``."""
        return int(self._small(f"{modality}/ndates")[self._check_index(i)])

    def read(
        self, i: int, modality: str, window: Window | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One sample's series, trimmed to its real dates, optionally cropped.

        Args:
            i: sample index.
            modality: a stored modality.
            window: ``(rows, cols)`` step-1 slices in the modality's pixel grid; only the
                inner chunks that intersect it are decoded. None = the whole tile.

        Returns:
            data ``(T_i, C, h, w)`` storage dtype (file band order), dates ``(T_i, 3)`` int16,
            and invalid ``(T_i, h, w)`` bool for masked modalities, else None.
        """
        i = self._check_index(i)
        spec = self.spec.modality(modality)
        t = self.ndates(i, modality)
        rows, cols = window or (slice(None), slice(None))
        data = self._sample(f"{modality}/data", i, (slice(0, t), slice(None), rows, cols))
        dates = self._sample(f"{modality}/dates", i, (slice(0, t), slice(None)))
        invalid = None
        if spec.has_mask:
            invalid = self._sample(f"{modality}/invalid", i, (slice(0, t), rows, cols))
        return data, dates, invalid

    def label(self, i: int, window: Window | None = None) -> np.ndarray:
        """``(K,)`` float32 fractions, or the ``(P, P)`` raw class raster (``window``: a crop)."""
        spec = self.spec.label
        if spec is None:
            raise KeyError(
                f"{self.path}: store {self.spec.name!r} has no labels (pretraining only)"
            )
        i = self._check_index(i)
        if spec.kind == "fractions":
            if window is not None:
                raise ValueError(f"{self.path}: a window applies to raster labels only")
            return self._small("label")[i].copy()
        rows, cols = window or (slice(None), slice(None))
        return self._sample("label", i, (rows, cols))

    def ref_date(self, i: int) -> np.ndarray:
        """``(3,)`` int16 reference date."""
        return self._small("ref_date")[self._check_index(i)].copy()

    def bounds(self, i: int) -> np.ndarray:
        """``(4,)`` float64 footprint (minx, miny, maxx, maxy) in the tile CRS; NaN if unknown."""
        return self._small("bounds")[self._check_index(i)].copy()
