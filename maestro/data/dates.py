"""Acquisition dates as ``(year, day_of_year, hour)`` int16 triples (as IGNF/MAESTRO parses them).

Dates are parsed at day precision: the hour is always 0 (the Sentinel product names carry
a time, but MAESTRO parses the ``YYYYMMDD`` part only; we keep that, docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping

import numpy as np

DATE_DTYPE = np.int16


def parse_yyyymmdd(text: str | int) -> tuple[int, int, int]:
    """``"20190701"`` -> ``(2019, 182, 0)``. A day ``00`` (unknown day in FLAIR) becomes ``01``.

    Eight digits, optionally followed by a non-digit (``20190701T104431``); a ninth digit
    (``201907015``) is an error, not a truncation.
    """
    s = str(text).strip()
    if len(s) < 8 or not s[:8].isdigit() or s[8:9].isdigit():  # a 9th digit is a typo
        raise ValueError(f"not a YYYYMMDD date: {text!r}")
    year, month, day = int(s[:4]), int(s[4:6]), int(s[6:8])
    day = max(day, 1)
    month = max(month, 1)
    try:
        doy = dt.date(year, month, day).timetuple().tm_yday
    except ValueError as e:  # month 13, day 32, February 30: name the text, not just the field
        raise ValueError(f"not a YYYYMMDD date: {text!r} ({e})") from None
    return year, doy, 0


def product_date(name: str | bytes, token_from_end: int = 5) -> tuple[int, int, int]:
    """Date of a Sentinel product name: token ``[-token_from_end]`` split on "_", first 8 chars.

    ``S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449`` -> ``(2019, 3, 0)``.
    """
    if isinstance(name, bytes):
        name = name.decode()
    if not isinstance(name, str):  # e.g. a numeric HDF5 dataset where names were expected
        raise ValueError(f"a product name is text, found {type(name).__name__} {name!r}")
    tokens = name.split("_")
    if len(tokens) < token_from_end:
        raise ValueError(f"product name {name!r} has fewer than {token_from_end} '_' tokens")
    return parse_yyyymmdd(tokens[-token_from_end][:8])


def keyed_values(value: str | Mapping[str, object], base: int) -> list[object]:
    """Values of a JSON dict with consecutive number keys from ``base``, in key order.

    Keys are read as numbers (``"01"`` is 1); a JSON string is decoded first.
    """
    raw = json.loads(value) if isinstance(value, str) else dict(value)
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a JSON object of dates, found {type(raw).__name__}")
    d = {int(k): v for k, v in raw.items()}
    if len(d) != len(raw):
        raise ValueError(f"date keys repeat a number: {sorted(raw)[:5]}")
    keys = sorted(d)
    if keys != list(range(base, base + len(keys))):
        raise ValueError(f"date keys must be consecutive from {base}, found {keys[:5]}...")
    return [d[k] for k in keys]


def date_dict(value: str | Mapping[str, object], base: int) -> list[tuple[int, int, int]]:
    """Dates of a JSON dict with consecutive string keys starting at ``base`` ("0" or "1").

    Values may be ints (PASTIS) or strings (FLAIR-HUB); see :func:`keyed_values`.
    """
    return [parse_yyyymmdd(v) for v in keyed_values(value, base)]  # type: ignore[arg-type]


def as_array(dates: Iterable[tuple[int, int, int]]) -> np.ndarray:
    """List of triples -> ``(T, 3)`` int16 array."""
    arr = np.asarray(list(dates), dtype=DATE_DTYPE)
    return arr.reshape(-1, 3)


def to_yyyymmdd(year: int, doy: int) -> str:
    """Inverse of :func:`parse_yyyymmdd` (hour dropped)."""
    return (dt.date(int(year), 1, 1) + dt.timedelta(days=int(doy) - 1)).strftime("%Y%m%d")
