"""One conversion task per shard, run in this process or in a pool of forked workers.

Shard ``k`` holds samples ``[k * S, (k + 1) * S)`` of the store order (``S`` =
``shard_samples``). Its task reads those samples one at a time, validates them, copies them
into one-shard buffers and writes each sharded array's slab at once: every sharded array
has exactly one file per shard, so concurrent tasks write disjoint files. The small
per-sample arrays (ids, splits, ndates, ref_date, bounds, fraction labels) have chunks that
span many shards and must not be written concurrently: a task returns them, with its
train-split statistics (count, mean, M2 per band and split scheme) and the tiles' CRS, in
its *marker* ``<work>/shards/<k>.npz``, written atomically after the slabs. The parent
writes the small arrays and merges the statistics in shard order when every marker exists,
so the store does not depend on the number of workers. A marker also means "this shard is
done" to a rerun.

Memory: one shard's buffers and one sample per task, whatever the dataset size.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from maestro.data.errors import RawFormatError
from maestro.data.sample import RawReader, SampleRef, in_time_order
from maestro.data.transforms import has_measurement, scale
from maestro.datasets.spec import StoreSpec
from maestro.store.shard_io import ShardedArray
from maestro.store.validate import validate_sample
from maestro.store.zarr_store import NO_SPLIT, SPLIT_CODES, ArrayLayout, encode_ids

__all__ = ["RunningStats", "ShardFailure", "ShardJob", "convert_shard", "read_marker", "run_shards"]


class RunningStats:
    """Per-band count, mean and sum of squared deviations, merged batch by batch (float64).

    Merging uses the pairwise update of Chan et al., so values of any magnitude keep full
    float64 precision (no ``E[x^2] - E[x]^2`` cancellation).
    """

    def __init__(self, channels: int) -> None:
        self.count = np.zeros(channels, np.int64)
        self.mean = np.zeros(channels, np.float64)
        self.m2 = np.zeros(channels, np.float64)

    def update(self, x: np.ndarray, invalid: np.ndarray | None) -> None:
        """Add scaled values ``x`` ``(T, C, H, W)``.

        NaN/inf values and pixels flagged in ``invalid`` ``(T, H, W)`` are skipped.
        """
        x = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(x)
        if invalid is not None:
            ok &= ~invalid[:, None, :, :]
        n = ok.sum(axis=(0, 2, 3))
        xs = np.where(ok, x, 0.0)
        mean = xs.sum(axis=(0, 2, 3)) / np.maximum(n, 1)
        dev = np.where(ok, x - mean[None, :, None, None], 0.0)
        self.merge(n, mean, (dev * dev).sum(axis=(0, 2, 3)))

    def merge(self, count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        """Add a partial result ``(count, mean, m2)``, each ``(C,)`` (e.g. another shard's)."""
        total = self.count + count
        delta = mean - self.mean
        frac = np.divide(count, total, out=np.zeros_like(self.mean), where=total > 0)
        self.mean = self.mean + delta * frac
        self.m2 = self.m2 + m2 + delta * delta * self.count * frac
        self.count = total

    def as_attrs(self) -> dict[str, list[Any]]:
        """``{"mean", "std", "count"}`` lists (population std; None where count is 0)."""
        std = np.sqrt(np.maximum(self.m2, 0.0) / np.maximum(self.count, 1))
        empty = self.count == 0
        return {
            "mean": [None if e else float(v) for v, e in zip(self.mean, empty, strict=True)],
            "std": [None if e else float(v) for v, e in zip(std, empty, strict=True)],
            "count": [int(c) for c in self.count],
        }


@dataclass(frozen=True)
class ShardJob:
    """Everything a shard task needs (inherited by forked workers, pickled otherwise).

    Attributes:
        reader: the raw reader (``reader.store`` declares the store).
        refs: every sample, in store order.
        layout: the store arrays (``zarr_store.layout``).
        id_width: bytes of the sample id array.
        shard_samples: samples per shard.
        store_dir: the Zarr group being written (its arrays exist).
        marker_dir: where finished shards leave their marker.
    """

    reader: RawReader
    refs: list[SampleRef]
    layout: dict[str, ArrayLayout]
    id_width: int
    shard_samples: int
    store_dir: Path
    marker_dir: Path

    @property
    def spec(self) -> StoreSpec:
        """The store declaration."""
        return self.reader.store

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return -(-len(self.refs) // self.shard_samples)

    def shard_refs(self, k: int) -> list[SampleRef]:
        """The samples of shard ``k``."""
        return self.refs[k * self.shard_samples : (k + 1) * self.shard_samples]


@dataclass(frozen=True)
class ShardFailure:
    """A shard whose task met a bad sample (the RawFormatError's fields; picklable)."""

    shard: int
    path: str
    expected: str
    found: str

    def error(self) -> RawFormatError:
        """The RawFormatError raised in the task."""
        return RawFormatError(self.path, self.expected, self.found)


def marker_path(marker_dir: Path, k: int) -> Path:
    """Marker file of shard ``k``."""
    return marker_dir / f"{k:06d}.npz"


def read_marker(marker_dir: Path, k: int) -> dict[str, np.ndarray]:
    """A finished shard's small arrays, ``crs``, ``stats/<mod>/<scheme>/{count,mean,m2}`` and
    ``empty/<mod>`` (ids of the samples whose series holds no measurement) and
    ``label_counts`` (pixels per class of a raster label; empty otherwise)."""
    with np.load(marker_path(marker_dir, k), allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def _write_marker(marker_dir: Path, k: int, arrays: dict[str, np.ndarray]) -> None:
    final = marker_path(marker_dir, k)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, final)


def _put(buffers: dict[str, np.ndarray], slot: int, path: str, value: Any) -> None:
    value = np.asarray(value)
    buffers[path][(slot, *(slice(0, s) for s in value.shape))] = value


def convert_shard(job: ShardJob, k: int) -> None:
    """Read, validate and write shard ``k``, then leave its marker.

    Raises:
        RawFormatError: the first bad sample of the shard (nothing of the shard is written).
    """
    spec, refs = job.spec, job.shard_refs(k)
    n = len(refs)
    buffers = {p: np.full((n, *lo.shape), lo.fill_value, lo.dtype) for p, lo in job.layout.items()}
    stats = {
        (m.name, s): RunningStats(len(m.bands))
        for m in spec.stored_modalities
        for s in spec.split_schemes
    }
    crs = []
    empty: dict[str, list[str]] = {m.name: [] for m in spec.stored_modalities}
    raster_label = spec.label is not None and spec.label.kind != "fractions"
    classes = np.zeros(len(spec.label.names) if raster_label else 0, np.int64)  # type: ignore[union-attr]
    for j, ref in enumerate(refs):
        sample = job.reader.read(ref)
        validate_sample(sample, ref, spec, Path(job.reader.root))
        sample = in_time_order(sample)
        _put(buffers, j, "sample_id", encode_ids([ref.sample_id], job.id_width)[0])
        _put(buffers, j, "ref_date", np.asarray(sample.ref_date, np.int16))
        if sample.bounds is not None:
            _put(buffers, j, "bounds", np.asarray(sample.bounds, np.float64))
        if spec.label is not None:
            _put(buffers, j, "label", sample.label)
            if raster_label:  # validated: values in [0, K)
                classes += np.bincount(np.asarray(sample.label).ravel(), minlength=len(classes))
        for scheme in spec.split_schemes:
            split = ref.splits.get(scheme)
            _put(buffers, j, f"split_{scheme}", NO_SPLIT if split is None else SPLIT_CODES[split])
        crs.append((sample.crs or spec.crs) if sample.bounds is not None else "")
        train = [s for s in spec.split_schemes if ref.splits.get(s) == "train"]
        for m in spec.stored_modalities:
            x = sample.rasters[m.name]
            _put(buffers, j, f"{m.name}/data", x)
            _put(buffers, j, f"{m.name}/dates", np.asarray(sample.dates[m.name], np.int16))
            _put(buffers, j, f"{m.name}/ndates", x.shape[0])
            inv = sample.invalid.get(m.name) if m.has_mask else None
            if inv is not None:
                _put(buffers, j, f"{m.name}/invalid", inv)
            if not has_measurement(x, inv, m):
                empty[m.name].append(ref.sample_id)
            if train:
                scaled = scale(x, m)
                for s in train:
                    stats[(m.name, s)].update(scaled, inv)
                del scaled
        del sample, x, inv
    group = zarr.open_group(job.store_dir, mode="r+", zarr_format=3)
    marker: dict[str, np.ndarray] = {"crs": np.array(crs, dtype=str)}
    for path, lo in job.layout.items():
        if not lo.sharded:
            marker[path] = buffers.pop(path)
            continue
        array = group[path]
        assert isinstance(array, zarr.Array)
        sharded = ShardedArray.of(array, job.store_dir / path)
        assert sharded is not None, f"{path}: not laid out by store_layout.create_arrays"
        sharded.write_shard(k, buffers.pop(path))  # replaces what a killed run left
    for mod, ids in empty.items():
        marker[f"empty/{mod}"] = np.array(ids, dtype=str)
    marker["label_counts"] = classes
    for (mod, scheme), acc in stats.items():
        for name in ("count", "mean", "m2"):
            marker[f"stats/{mod}/{scheme}/{name}"] = getattr(acc, name)
    _write_marker(job.marker_dir, k, marker)


def _attempt(job: ShardJob, k: int) -> ShardFailure | None:
    try:
        convert_shard(job, k)
    except RawFormatError as err:
        return ShardFailure(k, err.path, err.expected, err.found)
    return None


_JOB: ShardJob | None = None


def _die_with(parent: int) -> None:
    """Make this worker exit when ``parent`` does (a killed ``convert`` leaves no orphan
    converting, then hanging): the kernel's parent-death signal on Linux, and everywhere a
    thread that watches the parent id."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(job: ShardJob, parent: int) -> None:
    global _JOB
    _die_with(parent)
    _JOB = job


def _pool_task(k: int) -> ShardFailure | None:
    assert _JOB is not None, "worker not initialised"
    try:
        return _attempt(_JOB, k)
    except Exception as err:
        try:  # an exception the parent cannot unpickle would break the pool: describe it
            pickle.loads(pickle.dumps(err))
        except Exception:
            raise RuntimeError(f"shard {k}: {type(err).__name__}: {err}") from None
        raise


def run_shards(
    job: ShardJob, todo: list[int], workers: int, done: Callable[[int], None]
) -> list[ShardFailure]:
    """Run the tasks of the shards ``todo``; ``done(k)`` is called as each one finishes.

    A shard with a bad sample does not stop the others (their markers are kept for a rerun);
    any other exception stops the run: in a pool, queued shards are cancelled and running
    ones finish first.

    Args:
        job: the conversion job.
        todo: shard numbers to convert.
        workers: processes; 1 runs the tasks in this process, in order.
        done: progress callback.

    Returns:
        The failed shards, in shard order.
    """
    failures = []
    if workers <= 1 or len(todo) <= 1:
        for k in todo:
            failure = _attempt(job, k)
            if failure is not None:
                failures.append(failure)
            done(k)
        return failures
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(
        min(workers, len(todo)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(job, os.getpid()),
    ) as pool:
        futures = {pool.submit(_pool_task, k): k for k in todo}
        try:
            for future in as_completed(futures):
                failure = future.result()
                if failure is not None:
                    failures.append(failure)
                done(futures[future])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return sorted(failures, key=lambda f: f.shard)
