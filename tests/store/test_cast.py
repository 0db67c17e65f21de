"""The one casting rule of every reader: lossless, or values that fit, or a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from maestro.data.errors import RawFormatError
from maestro.store.cast import to_storage

BANDS = ("B2", "B3", "B4")


def test_lossless_and_fitting_casts_keep_every_value():
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 2, 2)
    assert to_storage(x, "uint16", "f.npy").dtype == np.uint16  # safe
    wide = np.array([[-32768, 0, 32767]], dtype=np.int32)
    out = to_storage(wide, "int16", "f.npy")
    assert out.dtype == np.int16 and out.tolist() == [[-32768, 0, 32767]]
    f = np.array([1.5, np.nan, -np.inf, 60000.0])
    got = to_storage(f, "float16", "f.npy")
    assert got.dtype == np.float16 and np.isnan(got[1]) and got[2] == -np.inf and got[3] == 60000


def test_wrapped_integer_names_file_band_date_and_value():
    x = np.zeros((2, 3, 4, 4), dtype=np.int32)
    x[1, 2, 3, 0] = 40000  # would be stored as -25536
    with pytest.raises(RawFormatError) as err:
        to_storage(x, "int16", "S2_1.npy", BANDS)
    e = err.value
    assert e.path == "S2_1.npy" and "[-32768, 32767]" in e.expected
    assert "40000 in band B4 (date 1) at index [1, 2, 3, 0]" in e.found and "int32" in e.found
    neg = np.array([[[[-1]]]], dtype=np.int16)
    with pytest.raises(RawFormatError, match="channel 0"):
        to_storage(neg, "uint16", "x.tif")


def test_float_overflow_and_kind_change_are_errors():
    x = np.zeros((1, 3, 2, 2))
    x[0, 1, 0, 1] = 1e6  # float16 inf
    with pytest.raises(RawFormatError, match=r"1000000\.0 in band B3"):
        to_storage(x, "float16", "S1A_1.npy", BANDS)
    with pytest.raises(RawFormatError, match=r"dtype uint16 .* without loss") as err:
        to_storage(np.ones((2, 2), np.float32), "uint16", "aerial.tif")
    assert err.value.found == "dtype float32"
