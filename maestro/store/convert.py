"""Raw distribution -> Zarr v3 store: parallel over shards, resumable, bounded memory.

``convert(reader, out)`` lists the samples (``reader.index()``, metadata only) and checks
the index, orders the samples by default-scheme split (train, val, test, then samples
outside it) and sample id, and cuts them into shards of ``shard_samples``. Each shard is
one task (:mod:`maestro.store.convert_shards`): read, validate and write its samples, then
leave a marker. ``workers > 1`` runs the tasks in a process pool (fork on Linux).

Everything happens in the work directory ``<out>.partial/``::

    fingerprint.json   what is being converted: the ordered index, the spec, the layout,
                       the shard size, the format and code versions (sha256)
    shards/<k>.npz     marker of a finished shard (its small arrays and statistics)
    store/             the Zarr group being written

The work directory survives a failure or a kill. A rerun with the same fingerprint
converts only the shards without a marker; a different fingerprint starts afresh. (The
fingerprint covers the index, not the pixels: delete ``<out>.partial`` to force a full
conversion after editing raw files in place.) When every shard is done, the parent writes
the small arrays, the attributes (with train-split statistics merged in shard order, hence
identical for any number of workers), the tile index, the consolidated metadata and the
manifest, renames ``store/`` to ``out`` (replacing an old store only then) and removes the
work directory. A bad sample raises :class:`RawFormatError` naming it, after the other
shards have been converted, and leaves no ``out``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from maestro import __version__
from maestro.data.errors import BusyError, RawFormatError
from maestro.data.sample import RawReader
from maestro.datasets.spec import StoreSpec, to_dict
from maestro.store.convert_shards import RunningStats, ShardJob, read_marker, run_shards
from maestro.store.manifest import MANIFEST_NAME
from maestro.store.tile_index import TILE_INDEX_NAME, build_tile_index, write_tile_index
from maestro.store.validate import (
    check_split_footprints,
    order_refs,
    padded_dates,
    validate_sample,
)
from maestro.store.zarr_store import (
    FORMAT,
    SPLIT_CODES,
    VERSION,
    coordinates,
    create_arrays,
    decode_ids,
    geotransform,
    layout,
    store_hash,
    write_manifest,
)
from maestro.utils.atomic import check_replaceable, write_json

__all__ = [
    "RunningStats",
    "convert",
    "store_hash",
    "validate_sample",
    "work_dir",
    "write_manifest",
]

log = logging.getLogger(__name__)


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of a conversion to ``out``: ``.<name>.lock`` beside it, while it runs."""
    out = Path(out)
    return out.with_name(f".{out.name}.lock")


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the conversion lock of ``out`` (POSIX ``flock``, released if the process dies).

    The file is removed on release; a process that locked a file that was removed meanwhile
    (its inode is no longer at the path) does not hold the lock.
    """
    if fcntl is None:  # no flock (Windows): unlocked
        yield
        return
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    busy = BusyError(
        f"{out}: another conversion to this path is running (it holds {path}); wait for it"
    )
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            if not path.exists() or path.stat().st_ino != os.fstat(fh.fileno()).st_ino:
                raise busy
            yield
            path.unlink(missing_ok=True)
        except BaseException:
            if path.exists() and path.stat().st_ino == os.fstat(fh.fileno()).st_ino:
                path.unlink()
            raise
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def work_dir(out: str | os.PathLike[str]) -> Path:
    """The work directory of a conversion to ``out``: ``<out>.partial``."""
    out = Path(out)
    return out.with_name(f"{out.name}.partial")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


#: Entries of a conversion's work directory (``<out>.partial``).
WORK_ENTRIES = frozenset({"fingerprint.json", "store", "shards"})


def _is_store(path: Path) -> bool:
    """A Zarr store that :func:`convert` wrote (it carries the maestro manifest)."""
    return (path / MANIFEST_NAME).is_file()


def _is_work(path: Path) -> bool:
    return {p.name for p in path.iterdir()} <= WORK_ENTRIES


def _fingerprint(job: ShardJob, tmax: dict[str, int]) -> str:
    doc = {
        "format": [FORMAT, VERSION, __version__],
        "spec": to_dict(job.spec),
        "shard_samples": job.shard_samples,
        "tmax": tmax,
        "layout": {
            p: [list(lo.shape), str(lo.dtype), lo.sharded, repr(lo.fill_value), lo.chunk]
            for p, lo in job.layout.items()
        },
        "refs": [
            [r.sample_id, sorted(r.splits.items()), sorted(r.ndates.items())] for r in job.refs
        ],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _prepare(job: ShardJob, work: Path, fingerprint: str) -> set[int]:
    """Reuse ``work`` if it holds the same conversion, else start afresh; return done shards."""
    record = work / "fingerprint.json"
    if record.is_file() and (job.store_dir / "zarr.json").is_file():
        try:
            same = json.loads(record.read_text()).get("fingerprint") == fingerprint
        except (ValueError, OSError):
            same = False
        if same:
            markers = (p.stem for p in job.marker_dir.glob("*.npz"))
            return {int(m) for m in markers if m.isdigit()} & set(range(job.n_shards))
        log.info(
            "%s holds another conversion (index, spec or shard size changed): restarting", work
        )
    _remove(work)
    job.marker_dir.mkdir(parents=True)
    group = zarr.open_group(job.store_dir, mode="w", zarr_format=3)
    create_arrays(group, job.layout, len(job.refs), job.shard_samples, coordinates(job.spec))
    write_json(record, {"fingerprint": fingerprint, "n_shards": job.n_shards})  # written last
    return set()


def _finalize(
    job: ShardJob, tmax: dict[str, int], splits: dict[str, Any]
) -> tuple[dict[str, list[str]], list[int]]:
    """Small arrays, attributes, tile index, consolidated metadata and manifest of the store.

    Returns modality -> ids of the samples whose series holds no measurement (store order),
    and the pixels per class of a raster label (empty without one).
    """
    spec = job.spec
    empty: dict[str, list[str]] = {m.name: [] for m in spec.stored_modalities}
    classes: np.ndarray | None = None
    small: dict[str, list[np.ndarray]] = {p: [] for p, lo in job.layout.items() if not lo.sharded}
    crs: list[str | None] = []
    stats = {
        (m.name, s): RunningStats(len(m.bands))
        for m in spec.stored_modalities
        for s in spec.split_schemes
    }
    for k in range(job.n_shards):
        marker = read_marker(job.marker_dir, k)
        for path, parts in small.items():
            parts.append(marker[path])
        crs.extend(str(c) or None for c in marker["crs"])
        for mod, ids in empty.items():  # markers of a run before D24 have none
            ids.extend(str(i) for i in marker.get(f"empty/{mod}", ()))
        counts = marker.get("label_counts")
        if counts is not None and counts.size:
            classes = counts.copy() if classes is None else classes + counts
        for (mod, scheme), acc in stats.items():
            key = f"stats/{mod}/{scheme}"
            acc.merge(marker[f"{key}/count"], marker[f"{key}/mean"], marker[f"{key}/m2"])
    group = zarr.open_group(job.store_dir, mode="r+", zarr_format=3)
    values = {path: np.concatenate(parts) for path, parts in small.items()}
    for path, value in values.items():
        group[path][...] = value  # type: ignore[index]
    for m in spec.stored_modalities:
        group[m.name].attrs.update(
            {
                "bands": list(m.bands),
                "wavelengths_um": list(m.wavelengths_um),
                "resolution_m": m.resolution_m,
                "dtype": m.dtype,
                "scaling": to_dict(m.scaling),
                "tmax": tmax[m.name],
                "geotransform": geotransform(m),
                "stats": {s: stats[(m.name, s)].as_attrs() for s in spec.split_schemes},
                "samples_without_measurement": len(empty[m.name]),
            }
        )
    label_counts = [] if classes is None else [int(c) for c in classes]
    group.attrs.update(
        {
            "format": FORMAT,
            "version": VERSION,
            "store_spec": to_dict(spec),
            "n_samples": len(job.refs),
            "splits": splits,
            "crs": spec.crs,
            "label_counts": label_counts,
            "created_by": f"maestro {__version__}",
        }
    )
    ids = decode_ids(values["sample_id"])
    split_codes = {s: values[f"split_{s}"] for s in spec.split_schemes}
    twins = check_split_footprints(job.reader.root, ids, split_codes, values["bounds"], crs)
    if twins:
        log.warning(
            "%d pairs of samples cover one footprint (e.g. %s): duplicates weigh twice",
            len(twins), twins[0],
        )  # fmt: skip
    index = build_tile_index(
        spec,
        ids,
        split_codes,
        values["ref_date"],
        values["bounds"],
        crs,
    )
    with warnings.catch_warnings():
        # "Consolidated metadata is currently not part in the Zarr format 3 specification"
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(job.store_dir)
    # after consolidation, which would list the file as an unknown Zarr node
    write_tile_index(index, job.store_dir / TILE_INDEX_NAME)
    return empty, label_counts


def _warn_empty(out: Path, empty: dict[str, list[str]], n: int) -> None:
    """Log each modality whose series holds no measurement for some samples (D24)."""
    for mod, ids in empty.items():
        if ids:
            log.warning(
                "%s: %d of %d samples have no measurement in %r (e.g. %s); the model sees "
                "zeros there (docs/decisions.md D24)",
                out, len(ids), n, mod, ", ".join(ids[:5]),
            )  # fmt: skip


def _warn_labels(out: Path, classes: list[int], store: StoreSpec) -> None:
    """Warn when label value 0 never occurs in a store whose other classes do: the labels
    are likely coded from 1 (every class shifted by one; D24)."""
    if classes and classes[0] == 0 and sum(classes) > 0:
        log.warning(
            "%s: label value 0 (%r) occurs in no sample while values up to %d do: labels "
            "coded from 1? (every class would be shifted by one)",
            out, store.label.names[0], max(k for k, c in enumerate(classes) if c),
        )  # fmt: skip


def _install(src: Path, final: Path) -> None:
    """Rename ``src`` to ``final``, replacing an existing ``final`` only at that moment."""
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        _remove(old)
        final.rename(old)
        src.rename(final)
        _remove(old)
    else:
        src.rename(final)


def _progress(total: int, initial: int, on: bool, name: str) -> Any:
    if not on:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"convert {name}", unit="sample")


def convert(
    reader: RawReader,
    out: str | os.PathLike[str],
    shard_samples: int = 32,
    progress: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Convert the distribution behind ``reader`` into the store ``out`` (see zarr_store).

    Args:
        reader: a RawReader (its ``store`` declares every shape and dtype). With
            ``workers > 1`` it is inherited by forked workers (pickled where fork is
            unavailable).
        out: the ``<name>.zarr`` directory to create (replaced if it exists, once the new
            store is complete).
        shard_samples: samples per shard file; also the unit of work and of resumption.
        progress: show a progress bar.
        workers: processes converting shards in parallel (1 = in this process).

    Returns:
        ``{"path", "n_samples", "splits", "tmax", "shard_samples", "content_hash",
        "workers", "shards", "shards_reused", "without_measurement"}``; the last maps each
        modality to its number of samples whose series holds no measurement (no
        acquisition, every pixel invalid or non-finite; also the modality attribute
        ``samples_without_measurement``); ``label_counts`` holds the pixels per class of a
        raster label (also the store attribute; empty for fraction labels).

    A conversion holds the lock :func:`lock_path` of ``out`` from start to end: a second
    conversion to the same ``out`` stops at once with :class:`BusyError`.

    Raises:
        RawFormatError: a bad index, or a sample that does not match the StoreSpec (named
            with its modality); finished shards stay in ``<out>.partial`` for a rerun.
    """
    if shard_samples < 1:
        raise ValueError(f"shard_samples must be >= 1, got {shard_samples}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    with _locked(out):
        return _convert(reader, out, shard_samples, progress, workers)


def _convert(
    reader: RawReader, out: Path, shard_samples: int, progress: bool, workers: int
) -> dict[str, Any]:
    store, root = reader.store, Path(reader.root)
    work = work_dir(out)
    # before any work: replacing `out` or `<out>.partial` must not delete anything but ours
    check_replaceable(out, _is_store, "Zarr store written by maestro convert", inputs=[root])
    check_replaceable(work, _is_work, "conversion work directory", inputs=[root])
    refs = order_refs(list(reader.index()), store, root)
    if not refs:
        raise RawFormatError(root, "at least one sample in the index", "none")
    tmax = padded_dates(refs, store, root)
    id_width = max(len(r.sample_id.encode("utf-8")) for r in refs)
    job = ShardJob(
        reader=reader,
        refs=refs,
        layout=layout(store, tmax, id_width),
        id_width=id_width,
        shard_samples=shard_samples,
        store_dir=work / "store",
        marker_dir=work / "shards",
    )
    splits = {
        s: {k: sum(r.splits.get(s) == k for r in refs) for k in SPLIT_CODES}
        for s in store.split_schemes
    }
    done = _prepare(job, work, _fingerprint(job, tmax))
    todo = [k for k in range(job.n_shards) if k not in done]
    if done:
        log.info("%s: %d of %d shards already converted", work, len(done), job.n_shards)
    bar = _progress(len(refs), sum(len(job.shard_refs(k)) for k in done), progress, store.name)
    finished = [len(done)]

    def _shard_done(k: int, samples: int) -> None:  # progress in the job log, bar or not
        finished[0] += 1
        log.info("%s: shard %d done (%d samples), %d of %d shards", out, k, samples,
                 finished[0], job.n_shards)  # fmt: skip
        if bar is not None:
            bar.update(samples)

    try:
        failures = run_shards(job, todo, workers, lambda k: _shard_done(k, len(job.shard_refs(k))))
    finally:
        if bar is not None:
            bar.close()
    if failures:
        err = failures[0].error()
        for other in failures[1:]:
            log.error("shard %d: %s", other.shard, other.error())
        err.add_note(
            f"{len(failures)} of {job.n_shards} shards failed; the finished ones are kept in "
            f"{work} and a rerun converts only the others"
        )
        raise err
    empty, classes = _finalize(job, tmax, splits)
    _warn_empty(out, empty, len(refs))
    _warn_labels(out, classes, store)
    digest = write_manifest(job.store_dir)
    _install(job.store_dir, out)
    _remove(work)
    return {
        "path": str(out),
        "n_samples": len(refs),
        "splits": splits,
        "tmax": tmax,
        "shard_samples": shard_samples,
        "content_hash": digest,
        "workers": workers,
        "shards": job.n_shards,
        "shards_reused": len(done),
        "without_measurement": {mod: len(ids) for mod, ids in empty.items()},
        "label_counts": classes,
    }
