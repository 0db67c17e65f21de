"""Sentinel product names for the demo TreeSatAI-TS files (real naming schemes).

MAESTRO reads the acquisition date of each HDF5 series from these names: split on "_",
token [-5], first 8 characters ``YYYYMMDD``. Everything else (satellite, times, orbits,
tile, ids) is plausible filler drawn from the caller's generator.
"""

from __future__ import annotations

import datetime as dt

import numpy as np


def mgrs_tile(easting: float, northing: float) -> str:
    """MGRS 100 km square of a UTM 32N (zone 32, band U) position, e.g. ``32UMD``."""
    cols, rows = "JKLMNPQR", "ABCDEFGHJKLMNPQRSTUV"  # zone 32: column set 2, rows offset 5
    return f"32U{cols[int(easting // 100_000) - 1]}{rows[(int(northing // 100_000) + 5) % 20]}"


def _stamp(day: dt.date, hour: int, rng: np.random.Generator, spread_min: int) -> dt.datetime:
    offset = int(rng.integers(0, spread_min * 60))
    return dt.datetime(day.year, day.month, day.day, hour) + dt.timedelta(seconds=offset)


def s2_product_names(year: int, doys: np.ndarray, tile: str, rng: np.random.Generator) -> list[str]:
    """L2A product names ``S2x_MSIL2A_<YYYYMMDD>T<hhmmss>_N<base>_R<orbit>_T<tile>_<proc>``.

    One per day of year in ``doys`` (T,); the sensing date is token [-5].
    """
    baseline = {2017: "N0205", 2018: "N0206", 2019: "N0211"}.get(year, "N0214")
    names = []
    for doy in doys:
        day = dt.date(year, 1, 1) + dt.timedelta(days=int(doy) - 1)
        t0 = _stamp(day, 10, rng, 40)
        t1 = t0 + dt.timedelta(seconds=int(rng.integers(3600, 3 * 3600)))
        sat = ("S2A", "S2B")[int(rng.integers(2))]
        orbit = ("R008", "R065", "R108")[int(rng.integers(3))]
        names.append(
            f"{sat}_MSIL2A_{t0:%Y%m%dT%H%M%S}_{baseline}_{orbit}_T{tile}_{t1:%Y%m%dT%H%M%S}"
        )
    return names


def s1_product_names(year: int, doys: np.ndarray, hour: int, rng: np.random.Generator) -> list[str]:
    """GRD product names ``S1x_IW_GRDH_1SDV_<start>_<stop>_<orbit>_<take>_<crc>``.

    One per day of year in ``doys`` (T,), sensed around ``hour`` UTC (17 ascending, 5
    descending over Germany); the start date is token [-5].
    """
    # absolute orbit: 175 orbits per 12-day cycle from a known product of each satellite
    refs = {"S1A": (dt.date(2019, 1, 1), 25287), "S1B": (dt.date(2019, 1, 2), 14318)}
    names = []
    for doy in doys:
        day = dt.date(year, 1, 1) + dt.timedelta(days=int(doy) - 1)
        sat = ("S1A", "S1B")[int(rng.integers(2))]
        ref_day, ref_orbit = refs[sat]
        orbit = ref_orbit + round((day - ref_day).days * 175 / 12)
        t0 = _stamp(day, hour, rng, 50)
        t1 = t0 + dt.timedelta(seconds=25)
        take, crc = int(rng.integers(0x10000, 0x400000)), int(rng.integers(0, 0x10000))
        names.append(
            f"{sat}_IW_GRDH_1SDV_{t0:%Y%m%dT%H%M%S}_{t1:%Y%m%dT%H%M%S}_{orbit:06d}_{take:06X}_{crc:04X}"
        )
    return names
