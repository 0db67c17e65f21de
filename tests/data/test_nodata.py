"""GeoTIFF no-data values become missing values (decision D22)."""

import numpy as np

from maestro.data.nodata import blank_nodata, nodata_mask


def test_nodata_mask_per_band() -> None:
    data = np.array([[[1.0, -9999.0]], [[-9999.0, np.nan]]], np.float32)  # (2, 1, 2)
    assert nodata_mask(data, (None, None)) is None
    holes = nodata_mask(data, (-9999.0, None))
    assert holes.tolist() == [[[False, True]], [[False, False]]]  # band 1 declares none
    assert nodata_mask(data, (float("nan"), float("nan"))).tolist() == [
        [[False, False]],
        [[False, True]],
    ]
    assert nodata_mask(data, (5.0, 5.0)) is None  # declared but absent


def test_blank_nodata_by_storage_kind() -> None:
    data = np.array([[[-9999, 7]]], np.int32)
    holes = nodata_mask(data, (-9999,))
    floats = blank_nodata(data, holes, "float32")
    assert np.isnan(floats[0, 0, 0]) and floats[0, 0, 1] == 7
    ints = blank_nodata(data, holes, "uint16")  # then flagged invalid by the reader
    assert ints.tolist() == [[[0, 7]]] and data[0, 0, 0] == -9999  # the input is kept
    assert blank_nodata(data, None, "float32") is data
