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
====================  ==========================  =================================================

Per-sample arrays (``<mod>/data``, ``<mod>/dates``, ``<mod>/invalid``, raster ``label``) are
sharded: one inner chunk per sample (what a read decodes), one shard file per
``shard_samples`` samples (what the converter writes at once). The small metadata arrays
(ids, splits, ndates, ref_date, bounds, fraction labels) use plain chunks of
``META_CHUNK_SHARDS * shard_samples`` samples, which keeps the file count low. Everything
is zstd-compressed and the metadata is consolidated into the root ``zarr.json``.

Sample ids are a NUL-padded uint8 array rather than a Zarr string array: zarr 3.1.6 flags
fixed-width unicode (``<U``) as ``UnstableSpecificationWarning`` (no v3 spec), and a uint8
array is readable by every Zarr v3 implementation. Putting 10^5 ids in the attributes would
bloat the consolidated metadata that every reader parses.

Root attributes: ``format``, ``version``, ``store_spec`` (``spec.to_dict``), ``n_samples``,
``splits`` ({scheme: {split: count}}), ``created_by``. Modality group attributes: ``bands``,
``wavelengths_um``, ``resolution_m``, ``dtype``, ``scaling``, ``tmax`` and ``stats``
({scheme: {"mean", "std", "count"}} per band in file order, on scaled values of the
train split, excluding padded dates, NaNs and invalid pixels).

A ``maestro_manifest.json`` inside the store lists every other file with its size and
sha256, plus one content hash (:func:`store_hash`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from maestro.datasets.spec import StoreSpec, store_from_dict

FORMAT = "maestro-store"
VERSION = 1
MANIFEST_NAME = "maestro_manifest.json"
ZSTD_LEVEL = 3
#: Plain chunks of the small metadata arrays hold this many shards' worth of samples.
META_CHUNK_SHARDS = 32
#: Split name -> code stored in ``split_<scheme>``; samples outside a scheme get -1.
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
NO_SPLIT = -1


@dataclass(frozen=True)
class ArrayLayout:
    """One store array: per-sample ``shape`` (without the leading N axis) and dtype.

    ``sharded`` arrays have one inner chunk per sample and ``shard_samples`` per shard file;
    the others have plain chunks of ``META_CHUNK_SHARDS * shard_samples`` samples.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    sharded: bool
    fill_value: Any = 0


def layout(spec: StoreSpec, tmax: dict[str, int], id_bytes: int) -> dict[str, ArrayLayout]:
    """Every array of a store, keyed by its path in the group.

    Args:
        spec: the store declaration (sizes derive from ``spec.tile_m``).
        tmax: modality -> padded number of dates (1 for single-date modalities).
        id_bytes: longest UTF-8 sample id, in bytes.
    """
    out: dict[str, ArrayLayout] = {
        "sample_id": ArrayLayout((id_bytes,), np.dtype("uint8"), False),
        "ref_date": ArrayLayout((3,), np.dtype("int16"), False),
        "bounds": ArrayLayout((4,), np.dtype("float64"), False, float("nan")),
    }
    for scheme in spec.split_schemes:
        out[f"split_{scheme}"] = ArrayLayout((), np.dtype("int8"), False, NO_SPLIT)
    if spec.label is None:
        pass  # pretraining-only store
    elif spec.label.kind == "fractions":
        out["label"] = ArrayLayout((len(spec.label.names),), np.dtype("float32"), False)
    else:
        if spec.label.grid_modality is None:
            raise ValueError(f"store {spec.name!r}: a raster label needs a grid_modality")
        p = spec.modality(spec.label.grid_modality).pixels(spec.tile_m)
        out["label"] = ArrayLayout((p, p), np.dtype(spec.label.dtype), True)
    for m in spec.stored_modalities:
        t, p = tmax[m.name], m.pixels(spec.tile_m)
        out[f"{m.name}/data"] = ArrayLayout((t, len(m.bands), p, p), np.dtype(m.dtype), True)
        out[f"{m.name}/dates"] = ArrayLayout((t, 3), np.dtype("int16"), True)
        out[f"{m.name}/ndates"] = ArrayLayout((), np.dtype("int16"), False)
        if m.has_mask:
            out[f"{m.name}/invalid"] = ArrayLayout((t, p, p), np.dtype("bool"), True, False)
    return out


def create_arrays(
    group: zarr.Group, arrays: dict[str, ArrayLayout], n: int, shard_samples: int
) -> dict[str, zarr.Array]:
    """Create every array of ``arrays`` with ``n`` samples in ``group``; returns them by path."""
    out = {}
    for path, lay in arrays.items():
        shard = (shard_samples, *lay.shape)
        meta = (shard_samples * META_CHUNK_SHARDS, *lay.shape)
        out[path] = group.create_array(
            name=path,
            shape=(n, *lay.shape),
            dtype=lay.dtype,
            chunks=(1, *lay.shape) if lay.sharded else meta,
            shards=shard if lay.sharded else None,
            compressors=ZstdCodec(level=ZSTD_LEVEL),
            fill_value=lay.fill_value,
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


# --- manifest ------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _content_hash(files: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['path']}\t{f['size']}\t{f['sha256']}\n".encode())
    return h.hexdigest()


def _list_files(root: Path) -> list[dict[str, Any]]:
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != MANIFEST_NAME and not p.name.startswith(".snakemake"):
            files.append({"path": rel, "size": p.stat().st_size, "sha256": _sha256(p)})
    return files


def write_manifest(root: str | os.PathLike[str]) -> str:
    """Write ``maestro_manifest.json`` in the store directory ``root``; return the content hash.

    The manifest lists every other file (relative POSIX path, size, sha256), sorted by
    path, and ``content_hash`` = sha256 of the ``path<TAB>size<TAB>sha256`` lines.
    """
    root = Path(root)
    files = _list_files(root)
    digest = _content_hash(files)
    manifest = {"format": FORMAT, "content_hash": digest, "files": files}
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return digest


def store_hash(root: str | os.PathLike[str]) -> str:
    """Content hash of a converted store, read from its manifest (no file is hashed)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; was {root} written by maestro convert?")
    return str(json.loads(path.read_text())["content_hash"])


def verify_manifest(root: str | os.PathLike[str]) -> list[str]:
    """Re-hash the store; return one line per difference from the manifest (empty = intact)."""
    root = Path(root)
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    found = {f["path"]: f for f in _list_files(root)}
    problems = [f"missing: {p}" for p in sorted(set(listed) - set(found))]
    problems += [f"unlisted: {p}" for p in sorted(set(found) - set(listed))]
    problems += [f"changed: {p}" for p in sorted(set(listed) & set(found)) if listed[p] != found[p]]
    if _content_hash(manifest["files"]) != manifest["content_hash"]:
        problems.append("content_hash does not match the file list")
    return problems


# --- read side -----------------------------------------------------------------------------


class Store:
    """Read-only access to a converted store, one sample at a time.

    Only the path is kept until the first access, and the Zarr group is reopened in any
    new process (e.g. a forked DataLoader worker), so instances are safe to pass to
    workers and to pickle. Every read indexes a single sample: fancy indexing across
    shards is much slower in zarr-python 3.1 (PIPELINE_NOTES §4.3).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._group: zarr.Group | None = None
        self._pid: int | None = None
        self._cache: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
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
                    f"{attrs.get('format')!r} version {attrs.get('version')!r}"
                )
            self._group, self._pid, self._cache = group, os.getpid(), {"attrs": attrs}
        return self._group

    def _array(self, path: str) -> zarr.Array:
        group = self.group  # reopens (and clears the cache) in a new process
        key = f"array:{path}"
        if key not in self._cache:
            node = group[path]
            assert isinstance(node, zarr.Array)
            self._cache[key] = node
        return self._cache[key]

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
    def sample_ids(self) -> list[str]:
        """Sample ids in store order."""
        if "ids" not in self._cache:
            self._cache["ids"] = decode_ids(self._array("sample_id")[:])
        return self._cache["ids"]

    def split_codes(self, scheme: str) -> np.ndarray:
        """``(N,)`` int8 split codes of ``scheme`` (:data:`SPLIT_CODES`, -1 = not in it)."""
        if scheme not in self.spec.split_schemes:
            raise KeyError(
                f"{self.path}: no split scheme {scheme!r}; has {list(self.spec.split_schemes)}"
            )
        key = f"split:{scheme}"
        if key not in self._cache:
            self._cache[key] = np.asarray(self._array(f"split_{scheme}")[:])
        return self._cache[key]

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

    # --- samples -------------------------------------------------------------------------
    def _check_index(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.n_samples:
            raise IndexError(f"{self.path}: sample index {i} out of range [0, {self.n_samples})")
        return i

    def ndates(self, i: int, modality: str) -> int:
        """Number of real acquisitions of sample ``i`` for ``modality``."""
        return int(self._array(f"{modality}/ndates")[self._check_index(i)])

    def read(self, i: int, modality: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One sample's series, trimmed to its real dates.

        Returns:
            data ``(T_i, C, H, W)`` storage dtype (file band order), dates ``(T_i, 3)`` int16,
            and invalid ``(T_i, H, W)`` bool for masked modalities, else None.
        """
        i = self._check_index(i)
        self.spec.modality(modality)
        t = self.ndates(i, modality)
        data = np.asarray(self._array(f"{modality}/data")[i, :t])
        dates = np.asarray(self._array(f"{modality}/dates")[i, :t])
        invalid = None
        if self.spec.modality(modality).has_mask:
            invalid = np.asarray(self._array(f"{modality}/invalid")[i, :t])
        return data, dates, invalid

    def label(self, i: int) -> np.ndarray:
        """``(K,)`` float32 fractions, or ``(P, P)`` raw class raster."""
        if self.spec.label is None:
            raise KeyError(f"{self.path}: store {self.spec.name!r} has no labels (pretraining only)")
        return np.asarray(self._array("label")[self._check_index(i)])

    def ref_date(self, i: int) -> np.ndarray:
        """``(3,)`` int16 reference date."""
        return np.asarray(self._array("ref_date")[self._check_index(i)])

    def bounds(self, i: int) -> np.ndarray:
        """``(4,)`` float64 footprint (minx, miny, maxx, maxy); NaN when unknown."""
        return np.asarray(self._array("bounds")[self._check_index(i)])
