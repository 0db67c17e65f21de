"""Raw distribution -> Zarr v3 store, streamed one shard at a time.

``convert(reader, out)`` lists the samples (``reader.index()``, metadata only), orders them
by default-scheme split (train, val, test, then samples outside it) and sample id, then
reads them one by one, validates each against the StoreSpec, copies it into a one-shard
buffer and writes the buffer as one slab when it is full. Memory is therefore bounded by
one shard, whatever the dataset size. Train-split statistics are accumulated on the way
(float64, merged per sample). Everything is written in a temporary sibling directory that
is renamed to ``out`` only after the attributes, the consolidated metadata and the
manifest are written: an error leaves neither ``out`` nor the temporary directory.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from maestro import __version__
from maestro.data.errors import RawFormatError
from maestro.data.sample import RawReader, RawSample, SampleRef
from maestro.data.transforms import scale
from maestro.data.zarr_store import (
    FORMAT,
    NO_SPLIT,
    SPLIT_CODES,
    VERSION,
    ArrayLayout,
    create_arrays,
    encode_ids,
    layout,
    store_hash,
    write_manifest,
)
from maestro.datasets.spec import ModalitySpec, StoreSpec, to_dict
from maestro.utils.atomic import atomic_path

__all__ = ["RunningStats", "convert", "store_hash", "validate_sample", "write_manifest"]

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2, None: 3}


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
        m2 = (dev * dev).sum(axis=(0, 2, 3))
        total = self.count + n
        delta = mean - self.mean
        frac = np.divide(n, total, out=np.zeros_like(self.mean), where=total > 0)
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


def _where(root: Path, sample_id: str, what: str) -> str:
    return f"{root} sample {sample_id!r} {what}"


def _check(ok: bool, where: str, expected: str, found: object) -> None:
    if not ok:
        raise RawFormatError(where, expected, str(found))


def _describe(a: np.ndarray) -> str:
    return f"shape {tuple(a.shape)} dtype {a.dtype}"


def _validate_modality(
    sample: RawSample, ref: SampleRef, m: ModalitySpec, store: StoreSpec, root: Path
) -> None:
    where = _where(root, ref.sample_id, f"modality {m.name!r}")
    _check(m.name in sample.rasters, where, "a raster", f"modalities {sorted(sample.rasters)}")
    x = np.asarray(sample.rasters[m.name])
    t = ref.ndates.get(m.name) if m.temporal else 1
    p = m.pixels(store.tile_m)
    expected = (t, len(m.bands), p, p)
    _check(
        x.shape == expected,
        where,
        f"(T, C, H, W) = {expected} (T from the index, C = bands {m.bands})",
        _describe(x),
    )
    _check(x.dtype == np.dtype(m.dtype), where, f"dtype {m.dtype}", _describe(x))
    _check(m.name in sample.dates, where, "dates", f"dates for {sorted(sample.dates)}")
    d = np.asarray(sample.dates[m.name])
    _check(
        d.shape == (t, 3) and np.issubdtype(d.dtype, np.integer),
        where,
        f"integer dates of shape {(t, 3)}",
        _describe(d),
    )
    if m.has_mask:
        _check(
            m.name in sample.invalid, where, "an invalid mask", f"masks {sorted(sample.invalid)}"
        )
        inv = np.asarray(sample.invalid[m.name])
        _check(
            inv.shape == (t, p, p) and inv.dtype == np.bool_,
            where,
            f"bool invalid mask of shape {(t, p, p)}",
            _describe(inv),
        )
    else:
        _check(
            m.name not in sample.invalid,
            where,
            "no invalid mask (the modality declares none)",
            "a mask",
        )


def validate_sample(sample: RawSample, ref: SampleRef, store: StoreSpec, root: Path) -> None:
    """Check one RawSample against the StoreSpec and its index entry.

    Raises:
        RawFormatError: naming the sample and the modality (or label) that does not match.
    """
    where = _where(root, ref.sample_id, "")
    _check(sample.sample_id == ref.sample_id, where, f"id {ref.sample_id!r}", sample.sample_id)
    extra = sorted(set(sample.rasters) - {m.name for m in store.stored_modalities})
    _check(not extra, where, f"modalities {[m.name for m in store.stored_modalities]}", extra)
    for m in store.stored_modalities:
        _validate_modality(sample, ref, m, store, root)
    where = _where(root, ref.sample_id, "label")
    spec = store.label
    if spec is None:
        _check(sample.label is None, where, "no label (the store has none)", "a label")
    elif spec.kind == "fractions":
        lab = np.asarray(sample.label)
        shape: tuple[int, ...] = (len(spec.names),)
        _check(lab.shape == shape, where, f"{shape} class fractions", _describe(lab))
        _check(lab.dtype == np.float32, where, "dtype float32", _describe(lab))
    else:
        assert spec.grid_modality is not None
        lab = np.asarray(sample.label)
        p = store.modality(spec.grid_modality).pixels(store.tile_m)
        _check(lab.shape == (p, p), where, f"raster of shape {(p, p)}", _describe(lab))
        _check(lab.dtype == np.dtype(spec.dtype), where, f"dtype {spec.dtype}", _describe(lab))
        top = int(lab.max()) if lab.size else 0
        _check(
            top < len(spec.names) and (lab.size == 0 or int(lab.min()) >= 0),
            where,
            f"class values in [0, {len(spec.names)})",
            f"values in [{lab.min()}, {top}]",
        )
    if sample.bounds is not None:
        b = np.asarray(sample.bounds, dtype=np.float64)
        _check(b.shape == (4,), _where(root, ref.sample_id, "bounds"), "4 values", b.shape)
    r = np.asarray(sample.ref_date)
    _check(
        r.shape == (3,),
        _where(root, ref.sample_id, "ref_date"),
        "(year, doy, hour)",
        _describe(r),
    )


def _order(refs: list[SampleRef], store: StoreSpec, root: Path) -> list[SampleRef]:
    ids = [r.sample_id for r in refs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise RawFormatError(root, "unique sample ids in the index", f"duplicates {dup}")
    main = "default" if "default" in store.split_schemes else store.split_schemes[0]
    for r in refs:
        bad = {k: v for k, v in r.splits.items() if v is not None and v not in SPLIT_CODES}
        unknown = set(r.splits) - set(store.split_schemes)
        if bad or unknown:
            raise RawFormatError(
                _where(root, r.sample_id, "splits"),
                f"schemes {store.split_schemes} -> train/val/test/None",
                r.splits,
            )
    return sorted(refs, key=lambda r: (_SPLIT_ORDER[r.splits.get(main)], r.sample_id))


def _tmax(refs: list[SampleRef], store: StoreSpec, root: Path) -> dict[str, int]:
    out = {}
    for m in store.stored_modalities:
        if not m.temporal:
            out[m.name] = 1
            continue
        for r in refs:
            n = r.ndates.get(m.name)
            if n is None or n < 0:
                raise RawFormatError(
                    _where(root, r.sample_id, "index"),
                    f"ndates of temporal modality {m.name!r}",
                    r.ndates,
                )
        out[m.name] = max(1, max(r.ndates[m.name] for r in refs))
    return out


class _SlabWriter:
    """One shard's worth of per-sample buffers, written as one aligned slab when full."""

    def __init__(self, arrays: dict[str, zarr.Array], lay: dict[str, ArrayLayout], n: int) -> None:
        self.arrays = arrays
        self.lay = lay
        self.buffers = {p: np.zeros((n, *lo.shape), lo.dtype) for p, lo in lay.items()}
        self.start = 0
        self.fill = 0

    def put(self, rows: dict[str, np.ndarray]) -> None:
        slot = self.fill
        for path, value in rows.items():
            buf = self.buffers[path]
            buf[slot] = self.lay[path].fill_value
            value = np.asarray(value)
            buf[(slot, *(slice(0, s) for s in value.shape))] = value
        self.fill += 1
        if self.fill == len(next(iter(self.buffers.values()))):
            self.flush()

    def flush(self) -> None:
        if self.fill:
            for path, buf in self.buffers.items():
                self.arrays[path][self.start : self.start + self.fill] = buf[: self.fill]
        self.start += self.fill
        self.fill = 0


def _rows(sample: RawSample, ref: SampleRef, store: StoreSpec, id_width: int) -> dict[str, Any]:
    rows: dict[str, Any] = {
        "sample_id": encode_ids([ref.sample_id], id_width)[0],
        "ref_date": np.asarray(sample.ref_date, np.int16),
        "bounds": np.asarray(sample.bounds if sample.bounds is not None else [np.nan] * 4),
    }
    if store.label is not None:
        rows["label"] = sample.label
    for scheme in store.split_schemes:
        split = ref.splits.get(scheme)
        rows[f"split_{scheme}"] = np.int8(NO_SPLIT if split is None else SPLIT_CODES[split])
    for m in store.stored_modalities:
        x = sample.rasters[m.name]
        rows[f"{m.name}/data"] = x
        rows[f"{m.name}/dates"] = np.asarray(sample.dates[m.name], np.int16)
        rows[f"{m.name}/ndates"] = np.int16(x.shape[0])
        if m.has_mask:
            rows[f"{m.name}/invalid"] = sample.invalid[m.name]
    return rows


def _progress(items: list[SampleRef], on: bool, name: str) -> Any:
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"convert {name}", unit="sample")


def convert(
    reader: RawReader, out: str | os.PathLike[str], shard_samples: int = 32, progress: bool = False
) -> dict[str, Any]:
    """Convert the distribution behind ``reader`` into the store ``out`` (see zarr_store).

    Args:
        reader: a RawReader (its ``store`` declares every shape and dtype).
        out: the ``<name>.zarr`` directory to create (replaced if it exists).
        shard_samples: samples per shard file; also the write buffer size.
        progress: show a progress bar.

    Returns:
        ``{"path", "n_samples", "splits", "tmax", "shard_samples", "content_hash"}``.

    Raises:
        RawFormatError: a sample that does not match the StoreSpec (named with its modality).
    """
    if shard_samples < 1:
        raise ValueError(f"shard_samples must be >= 1, got {shard_samples}")
    store, root, out = reader.store, Path(reader.root), Path(out)
    refs = _order(list(reader.index()), store, root)
    if not refs:
        raise RawFormatError(root, "at least one sample in the index", "none")
    tmax = _tmax(refs, store, root)
    id_width = max(len(r.sample_id.encode("utf-8")) for r in refs)
    lay = layout(store, tmax, id_width)
    train_schemes = {s: [r.splits.get(s) == "train" for r in refs] for s in store.split_schemes}
    stats = {
        m.name: {s: RunningStats(len(m.bands)) for s in store.split_schemes}
        for m in store.stored_modalities
    }
    splits = {
        s: {k: sum(r.splits.get(s) == k for r in refs) for k in SPLIT_CODES}
        for s in store.split_schemes
    }

    with atomic_path(out) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        writer = _SlabWriter(
            create_arrays(group, lay, len(refs), shard_samples), lay, shard_samples
        )
        for pos, ref in enumerate(_progress(refs, progress, store.name)):
            sample = reader.read(ref)
            validate_sample(sample, ref, store, root)
            writer.put(_rows(sample, ref, store, id_width))
            for m in store.stored_modalities:
                schemes = [s for s in store.split_schemes if train_schemes[s][pos]]
                if schemes:
                    x = scale(sample.rasters[m.name], m)
                    inv = sample.invalid.get(m.name) if m.has_mask else None
                    for s in schemes:
                        stats[m.name][s].update(x, inv)
            del sample
        writer.flush()
        for m in store.stored_modalities:
            group[m.name].attrs.update(
                {
                    "bands": list(m.bands),
                    "wavelengths_um": list(m.wavelengths_um),
                    "resolution_m": m.resolution_m,
                    "dtype": m.dtype,
                    "scaling": to_dict(m.scaling),
                    "tmax": tmax[m.name],
                    "stats": {s: acc.as_attrs() for s, acc in stats[m.name].items()},
                }
            )
        group.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "store_spec": to_dict(store),
                "n_samples": len(refs),
                "splits": splits,
                "created_by": f"maestro {__version__}",
            }
        )
        with warnings.catch_warnings():
            # "Consolidated metadata is currently not part in the Zarr format 3 specification"
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(tmp)
        digest = write_manifest(tmp)
    return {
        "path": str(out),
        "n_samples": len(refs),
        "splits": splits,
        "tmax": tmax,
        "shard_samples": shard_samples,
        "content_hash": digest,
    }
