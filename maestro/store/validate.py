"""Checks of a raw distribution against its StoreSpec, before and while it is converted.

The index (``RawReader.index()``) is checked as a whole before anything is written (unique
ids, known split schemes and names, date counts of temporal modalities); each sample is
checked when it is read (shapes, dtypes, dates, masks, label, bounds and CRS). Every error
is a :class:`~maestro.data.errors.RawFormatError` naming the raw root, the sample and the
modality (or label) at fault.
"""

from __future__ import annotations

import calendar
import functools
from pathlib import Path

import numpy as np
from pyproj import CRS
from pyproj.exceptions import CRSError

from maestro.data.errors import RawFormatError
from maestro.data.sample import RawSample, SampleRef
from maestro.data.transforms import is_optical
from maestro.datasets.spec import ModalitySpec, StoreSpec
from maestro.store.zarr_store import SPLIT_CODES

__all__ = ["order_refs", "padded_dates", "validate_sample"]

_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2, None: 3}


def _where(root: Path, sample_id: str, what: str) -> str:
    return f"{root} sample {sample_id!r} {what}"


def _check(ok: bool, where: str, expected: str, found: object) -> None:
    if not ok:
        raise RawFormatError(where, expected, str(found))


def _describe(a: np.ndarray) -> str:
    return f"shape {tuple(a.shape)} dtype {a.dtype}"


@functools.lru_cache(maxsize=256)
def _crs(text: str) -> CRS | None:
    try:
        return CRS.from_user_input(text)
    except CRSError:
        return None


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
    _validate_units(x, m, where)
    _check(m.name in sample.dates, where, "dates", f"dates for {sorted(sample.dates)}")
    d = np.asarray(sample.dates[m.name])
    _check(
        d.shape == (t, 3) and np.issubdtype(d.dtype, np.integer),
        where,
        f"integer dates of shape {(t, 3)}",
        _describe(d),
    )
    _validate_dates(d, np.asarray(sample.ref_date), where)
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


#: Years a date may lie in (the sensors of every declared dataset flew after 1950; the
#: FLAIR-HUB historical aerial imagery, "195X", is not a model modality).
DATE_YEARS = (1950, 2100)
#: Largest distance in years between an acquisition and its sample's reference date (the
#: date code feeds it to the model unbounded; TreeSatAI-TS pairs 2011 aerial images with 2017
#: series, 6 years; the other datasets stay within 2).
MAX_YEARS_FROM_REF = 15.0


def _date_problem(d: np.ndarray) -> str | None:
    """The first impossible ``(year, day of year, hour)`` row of ``(T, 3)`` dates, described."""
    for year, doy, hour in d.tolist():
        leap = int(calendar.isleap(year))
        if not DATE_YEARS[0] <= year <= DATE_YEARS[1]:
            return f"year {year} outside {DATE_YEARS[0]}-{DATE_YEARS[1]}"
        if not 1 <= doy <= 365 + leap:
            return f"day of year {doy} in {year} (1-{365 + leap})"
        if not 0 <= hour <= 23:
            return f"hour {hour}"
    return None


def _validate_dates(d: np.ndarray, ref: np.ndarray, where: str) -> None:
    """Possible dates, within :data:`MAX_YEARS_FROM_REF` of the reference date, and not one
    day repeated over a whole series of 3+ acquisitions (D23).

    A typo in a year (``1019``, ``2190``) passes every parser and becomes a date code of
    hundreds of years, fed to the model as it is.
    """
    expected = "(year, day of year, hour) dates"
    _check((bad := _date_problem(ref.reshape(-1, 3))) is None, f"{where} ref_date", expected, bad)
    _check((bad := _date_problem(d)) is None, f"{where} dates", expected, bad)
    if d.size == 0:
        return
    distinct = len({tuple(row) for row in d.tolist()})
    _check(
        len(d) <= 2 or distinct > 1,
        f"{where} dates",
        "acquisitions on more than one day (a series of 3+ dates)",
        f"all {len(d)} dates {tuple(int(v) for v in d[0])}",
    )
    years = d[:, 0] + d[:, 1] / 365.25 - (float(ref[0]) + float(ref[1]) / 365.25)
    far = int(np.argmax(np.abs(years)))
    _check(
        abs(float(years[far])) <= MAX_YEARS_FROM_REF,
        f"{where} dates",
        f"acquisitions within {MAX_YEARS_FROM_REF:g} years of the reference date "
        f"{tuple(int(v) for v in ref)}",
        f"date {far} {tuple(int(v) for v in d[far])}, {years[far]:+.1f} years away",
    )


#: Largest share of values <= 0 in a linear-backscatter series (zeros are no-data fill).
MAX_NONPOSITIVE_BACKSCATTER = 0.5
#: Bands of a dB-valued SAR modality (not log-scaled) that are backscatter in dB.
SAR_DB_BANDS = ("VV", "VH")
#: Share of positive VV/VH values (with a median below 1) that means linear power, not dB:
#: measured dB backscatter is mostly -30 to -5, positive only on bright targets.
MIN_POSITIVE_LINEAR = 0.9
#: Smallest median of an optical float series' positive values, after the declared scaling
#: (reflectance x 1e4 / 1e4 is ~0.01-1; reflectance in 0-1 gives ~1e-5).
MIN_SCALED_REFLECTANCE = 1e-3


def _validate_units(x: np.ndarray, m: ModalitySpec, where: str) -> None:
    """Values in the unit the scaling expects, where a wrong unit is unambiguous.

    Linear backscatter (log-scaled) is positive: a series mostly <= 0 is in dB, and every
    value would be missing (D20). dB backscatter (not log-scaled: PASTIS-HD, S2-NAIP) is
    mostly negative: VV/VH values nearly all in (0, 1) are linear power. An optical float
    series (every band below 3 um) in reflectance x 1e4 has positive values around
    100-10,000: a median below
    ``MIN_SCALED_REFLECTANCE`` x divisor is reflectance in 0-1. Integer series cannot be in
    0-1 (the storage cast refuses the fractions).
    """
    finite = x[np.isfinite(x)] if x.dtype.kind == "f" else None
    if finite is None or finite.size == 0:
        return
    if m.scaling.log:
        share = float(np.mean(finite <= 0))
        _check(
            share <= MAX_NONPOSITIVE_BACKSCATTER,
            where,
            "linear backscatter (power, > 0; the scaling takes its log)",
            f"{share:.0%} of the values <= 0 (min {finite.min():.4g}): dB values?",
        )
        return
    sar = [i for i, b in enumerate(m.bands) if b in SAR_DB_BANDS]
    if sar:  # dB backscatter
        v = x[:, sar]
        v = v[np.isfinite(v)]
        if v.size:
            share, med = float(np.mean(v > 0)), float(np.median(v))
            _check(
                not (share >= MIN_POSITIVE_LINEAR and med < 1.0),
                where,
                "backscatter in dB (mostly below 0)",
                f"{share:.0%} of the VV/VH values > 0, median {med:.4g}: linear power?",
            )
        return
    if is_optical(m):
        positive = finite[finite > 0]
        if positive.size:
            med = float(np.median(positive))
            _check(
                med / m.scaling.divisor >= MIN_SCALED_REFLECTANCE,
                where,
                f"reflectance x {m.scaling.divisor:g}-like values (the scaling divides by "
                f"{m.scaling.divisor:g})",
                f"a median of {med:.4g} over the positive values: reflectance in 0-1?",
            )


def _validate_label(sample: RawSample, ref: SampleRef, store: StoreSpec, root: Path) -> None:
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


def _validate_place(sample: RawSample, ref: SampleRef, store: StoreSpec, root: Path) -> None:
    """Bounds (4 values) and their CRS: the store's, or the tile's own when the store has none."""
    if sample.bounds is None:
        return
    b = np.asarray(sample.bounds, dtype=np.float64)
    _check(b.shape == (4,), _where(root, ref.sample_id, "bounds"), "4 values", b.shape)
    where = _where(root, ref.sample_id, "crs")
    if not store.crs:
        _check(
            bool(sample.crs),
            where,
            "the tile's own CRS with its bounds (the store has no single CRS)",
            sample.crs,
        )
    if sample.crs:
        own = _crs(sample.crs)
        _check(own is not None, where, "a CRS that pyproj understands", repr(sample.crs))
        if store.crs:
            _check(
                own == _crs(store.crs),
                where,
                f"bounds in the store CRS {store.crs} (readers reproject)",
                sample.crs,
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
    r = np.asarray(sample.ref_date)
    _check(
        r.shape == (3,) and np.issubdtype(r.dtype, np.integer),
        _where(root, ref.sample_id, "ref_date"),
        "integer (year, doy, hour)",
        _describe(r),
    )
    for m in store.stored_modalities:
        _validate_modality(sample, ref, m, store, root)
    _validate_label(sample, ref, store, root)
    _validate_place(sample, ref, store, root)


def order_refs(refs: list[SampleRef], store: StoreSpec, root: Path) -> list[SampleRef]:
    """Store order: default-scheme split (train, val, test, none), then sample id.

    Raises:
        RawFormatError: duplicate ids, or a split scheme or name the store does not declare.
    """
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


def padded_dates(refs: list[SampleRef], store: StoreSpec, root: Path) -> dict[str, int]:
    """Modality -> Tmax, the padded number of dates (1 for single-date modalities).

    Raises:
        RawFormatError: a temporal modality without a date count in the index.
    """
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


def check_split_footprints(
    root: Path,
    sample_ids: list[str],
    splits: dict[str, np.ndarray],
    bounds: np.ndarray,
    crs: list[str | None],
) -> list[tuple[str, str]]:
    """Refuse one footprint in two splits of a scheme: a copy of a training sample filed
    under another id in val or test would be scored as unseen data (docs/decisions.md D29).

    Args:
        sample_ids: N ids; ``splits``: scheme -> ``(N,)`` split codes (-1: not in it);
            ``bounds``: ``(N, 4)`` with NaN rows when unknown; ``crs``: per-sample CRS.

    Returns:
        Pairs of ids with one footprint in the same split (counted twice in training).

    Raises:
        RawFormatError: both ids, their splits and the footprint.
    """
    names = {v: k for k, v in SPLIT_CODES.items()}
    b = np.asarray(bounds, np.float64).reshape(len(sample_ids), 4)
    first: dict[tuple, int] = {}
    same = []
    for i in np.flatnonzero(np.isfinite(b).all(axis=1)):
        key = (crs[i], *np.round(b[i], 3))
        j = first.setdefault(key, int(i))
        if j == i:
            continue
        for scheme, codes in splits.items():
            a, c = int(codes[j]), int(codes[i])
            if a >= 0 and c >= 0 and a != c:
                raise RawFormatError(
                    root,
                    f"each footprint in one split of scheme {scheme!r} (no sample in two)",
                    f"{sample_ids[j]!r} ({names[a]}) and {sample_ids[i]!r} ({names[c]}) both "
                    f"cover {tuple(float(v) for v in b[i])}",
                )
        same.append((sample_ids[j], sample_ids[i]))
    return same
