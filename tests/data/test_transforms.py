"""Load-time scaling, the DEM relative-height transform, band reorder, non-finite handling."""

import numpy as np

from maestro.data.transforms import (
    date_choice_bands,
    has_measurement,
    missing_as_nan,
    prepare,
    scale,
)
from maestro.datasets import catalog


def test_log_scaling_and_reorder():
    s1 = catalog().store("treesatai_ts").modality("s1_asc")
    x = np.array([0.1, 1e-12, 0.0, -0.5, np.nan], np.float32).reshape(1, 1, 1, 5).repeat(2, 1)
    y = scale(x, s1)
    np.testing.assert_allclose(y[0, 0, 0, :2], [np.log(0.1) / 5, np.log(1e-10) / 5], rtol=1e-6)
    # zero and negative backscatter are no measurement (S1 GRD no-data fill): missing, as NaN
    assert np.isnan(y[0, 0, 0, 2:]).all()
    out = prepare(x, s1)
    assert (out[0, 0, 0, 2:] == 0.0).all()  # non-finite -> 0 for the model
    assert np.isnan(prepare(x, s1, fill_nonfinite=False)[0, 0, 0, 2:]).all()
    assert x[0, 0, 0, 2] == 0.0  # the input is left as it was


def test_missing_as_nan_for_backscatter_and_optical_fills():
    cat = catalog()
    s1 = cat.store("treesatai_ts").modality("s1_asc")
    x = np.array([[[[0.2, 0.0]]]], np.float32)
    assert missing_as_nan(x, s1)[0, 0, 0].tolist()[0] == np.float32(0.2)
    assert np.isnan(missing_as_nan(x, s1)[0, 0, 0, 1]) and x[0, 0, 0, 1] == 0.0
    clean = np.full((1, 1, 1, 2), 0.3, np.float32)
    assert missing_as_nan(clean, s1) is clean  # nothing missing: no copy
    s2 = cat.store("pastis_hd").modality("s2")  # int16 reflectance x 1e4
    r = np.full((2, 10, 1, 4), 800, np.int16)
    r[0, 3, 0, 0] = 0  # one band at 0: a value (a dark band)
    r[0, 5, 0, 1] = -50  # slightly negative after atmospheric correction: a value
    assert missing_as_nan(r, s2) is r
    r[1, :, 0, 2] = 0  # 0 in every band: the L2A no-data value (D26)
    r[1, 4, 0, 3] = -9999  # a THEIA-style fill in one band
    out = missing_as_nan(r, s2)
    assert out.dtype == np.float32 and np.isnan(out[1, :, 0, 2]).all()
    assert np.isnan(out[1, 4, 0, 3]) and np.isfinite(out[1, [0, 1, 2, 3, 5], 0, 3]).all()
    assert np.isfinite(out[0]).all() and out[0, 5, 0, 1] == -50
    aerial = cat.store("flair_hub").modality("aerial")  # uint8: black pixels are fills
    img = np.full((1, 4, 2, 2), 7, np.uint8)
    img[0, :, 1, 1] = 0
    assert np.isnan(missing_as_nan(img, aerial)[0, :, 1, 1]).all()
    dem = cat.store("flair_hub").modality("dem")  # not optical: 0 m is a height
    flat = np.zeros((1, 2, 2, 2), np.float32)
    assert missing_as_nan(flat, dem) is flat
    pastis_s1 = cat.store("pastis_hd").modality("s1_asc")  # dB: negative values are normal
    db = np.array([[[[-12.0, 0.0]]]], np.float32)
    assert missing_as_nan(db, pastis_s1) is db


def test_date_choice_bands_are_the_bands_the_model_reads():
    cat = catalog()
    pastis_s1 = cat.store("pastis_hd").modality("s1_asc")  # VV, VH, VV/VH; the model: VV, VH
    assert len(pastis_s1.bands) == 3 and date_choice_bands(pastis_s1) == [0, 1]
    assert date_choice_bands(cat.store("treesatai_ts").modality("s2")) is None  # all bands
    assert date_choice_bands(cat.store("treesatai_ts").modality("aerial")) is None  # reorder
    assert date_choice_bands(cat.store("flair_hub").modality("dem")) is None  # a transform


def test_aerial_reorder_to_nir_rgb():
    aerial = catalog().store("treesatai_ts").modality("aerial")  # file order NIR, G, B, R
    x = np.arange(4, dtype=np.uint8).reshape(1, 4, 1, 1) * 51
    out = prepare(x, aerial)[0, :, 0, 0]
    np.testing.assert_allclose(out, np.array([0, 3, 1, 2]) * 51 / 255, rtol=1e-6)  # NIR, R, G, B


def test_dem_relative_height():
    dem = catalog().store("flair_hub").modality("dem")
    x = np.array([350.0, 340.0], dtype=np.float32).reshape(1, 2, 1, 1)  # DSM, DTM in metres
    out = prepare(x, dem)[0, :, 0, 0]
    np.testing.assert_allclose(out, [0.35, 30 * (0.35 - 0.34)], rtol=1e-5)


def test_pastis_s1_keeps_vv_vh_only():
    s1 = catalog().store("pastis_hd").modality("s1_asc")
    x = np.array([-10.0, -20.0, 10.0], dtype=np.float16).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(prepare(x, s1)[0, :, 0, 0], [-0.5, -1.0])


def test_has_measurement():
    cat = catalog()
    s1 = cat.store("treesatai_ts").modality("s1_asc")  # linear, log-scaled
    zeros = np.zeros((3, 2, 4, 4), np.float32)  # GRD no-data fill everywhere
    assert not has_measurement(zeros, None, s1)
    one = zeros.copy()
    one[2, 1, 3, 3] = 0.05
    assert has_measurement(one, None, s1)
    assert not has_measurement(zeros[:0], None, s1)  # no acquisition
    s2 = cat.store("treesatai_ts").modality("s2")  # uint16 with a cloud mask
    x = np.ones((2, len(s2.bands), 4, 4), np.uint16)
    inv = np.ones((2, 4, 4), bool)
    assert not has_measurement(x, inv, s2)
    inv[1, 0, 0] = False
    assert has_measurement(x, inv, s2)
    pastis_s1 = cat.store("pastis_hd").modality("s1_asc")  # VV, VH read; VV/VH not
    y = np.full((1, 3, 4, 4), np.nan, np.float32)
    y[0, 2] = 1.0  # only the ratio the model never reads is finite
    assert not has_measurement(y, None, pastis_s1)
    y[0, 0, 1, 1] = -12.0  # dB: negative values are measurements
    assert has_measurement(y, None, pastis_s1)
