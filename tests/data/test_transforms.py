"""Load-time scaling, the DEM relative-height transform, band reorder, non-finite handling."""

import numpy as np

from maestro.data.transforms import prepare, scale
from maestro.datasets import catalog


def test_log_scaling_and_reorder():
    s1 = catalog().store("treesatai_ts").modality("s1_asc")
    x = np.array([0.1, 0.0, np.nan], dtype=np.float32).reshape(1, 1, 1, 3).repeat(2, axis=1)
    y = scale(x, s1)
    np.testing.assert_allclose(y[0, 0, 0, :2], [np.log(0.1) / 5, np.log(1e-10) / 5], rtol=1e-6)
    assert np.isnan(y[0, 0, 0, 2])
    out = prepare(x, s1)
    assert out[0, 0, 0, 2] == 0.0  # non-finite -> 0 for the model
    assert np.isnan(prepare(x, s1, fill_nonfinite=False)[0, 0, 0, 2])


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
