"""GeoTIFF profile checks (``maestro.data.geotiff``): grid, packed values, band order, masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import Affine

from maestro.data import geotiff as G
from maestro.data.errors import RawFormatError

NORTH_UP = Affine(0.2, 0.0, 600000.0, 0.0, -0.2, 6800000.0)


def _write(path: Path, data: np.ndarray, transform: Affine = NORTH_UP, **extra: object) -> Path:
    c, h, w = data.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype.name,
        crs="EPSG:2154", transform=transform, **extra,
    ) as dst:  # fmt: skip
        dst.write(data)
    return path


def _data(c: int = 4, dtype: str = "uint8") -> np.ndarray:
    return np.random.default_rng(0).integers(1, 200, (c, 8, 8)).astype(dtype)


@pytest.mark.parametrize(
    "transform",
    [
        Affine(0.0, 0.2, 600000.0, 0.2, 0.0, 6800000.0),  # rotated 90 degrees
        Affine(0.2, 0.0, 600000.0, 0.0, 0.2, 6799998.4),  # south-up (rows reversed)
        Affine(-0.2, 0.0, 600001.6, 0.0, -0.2, 6800000.0),  # east-west mirrored
        Affine(0.2, 0.01, 600000.0, 0.0, -0.2, 6800000.0),  # sheared
    ],
)
def test_a_grid_that_is_not_north_up_is_named(tmp_path: Path, transform: Affine) -> None:
    path = _write(tmp_path / "a.tif", _data(), transform)
    with rasterio.open(path) as src, pytest.raises(RawFormatError, match="north-up grid") as e:
        G.check_north_up(src, path)
    assert str(path) in str(e.value)
    ok = _write(tmp_path / "b.tif", _data())
    with rasterio.open(ok) as src:
        G.check_north_up(src, ok)


def test_scale_and_offset_tags_are_applied_to_float_storage_only(tmp_path: Path) -> None:
    raw = _data(2, "uint16")
    path = _write(tmp_path / "s1.tif", raw)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (1e-4, 1e-4), (0.0, 0.5)
    with rasterio.open(path) as src:
        out = G.unpack(src, src.read(), "float32", path)
        np.testing.assert_allclose(out[0], raw[0] * 1e-4)
        np.testing.assert_allclose(out[1], raw[1] * 1e-4 + 0.5)
        with pytest.raises(RawFormatError, match=r"uint16 values as distributed .*scales"):
            G.unpack(src, src.read(), "uint16", path)
    plain = _write(tmp_path / "plain.tif", raw)
    with rasterio.open(plain) as src:
        data = src.read()
        assert G.unpack(src, data, "uint16", plain) is data  # untagged: untouched


def test_band_descriptions_in_another_order_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.tif", _data())
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = ("B", "G", "R", "NIR")
    with rasterio.open(path) as src:
        with pytest.raises(RawFormatError, match=r"order R, G, B, NIR, found band descr.* B, G, R"):
            G.check_band_names(src, path, ("R", "G", "B", "NIR"))
        G.check_band_names(src, path, ("B", "G", "R", "NIR"))  # the declared order
        G.check_band_names(src, path, ("R", "G", "B", "IR"))  # other names: not judged
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = ("Band 1", "Band 2", "Band 3", "Band 4")
    with rasterio.open(path) as src:
        G.check_band_names(src, path, ("R", "G", "B", "NIR"))


def test_colour_interpretation_in_another_order_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "spot.tif", _data(3), photometric="RGB")
    with rasterio.open(path) as src:
        G.check_colour_order(src, path, ("R", "G", "B"))
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = (ColorInterp.blue, ColorInterp.green, ColorInterp.red)
    with rasterio.open(path) as src, pytest.raises(RawFormatError, match="interpretation blue"):
        G.check_colour_order(src, path, ("R", "G", "B"))
    grey = _write(tmp_path / "grey.tif", _data(3))  # no colour interpretation: not judged
    with rasterio.open(grey) as src:
        G.check_colour_order(src, grey, ("R", "G", "B"))


def test_an_internal_mask_makes_holes_but_an_rgb_files_alpha_does_not(tmp_path: Path) -> None:
    data = _data(4)
    mask = np.full((8, 8), 255, np.uint8)
    mask[:, :3] = 0
    path = _write(tmp_path / "masked.tif", data)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dst:
        dst.write_mask(mask)
    with rasterio.open(path) as src:
        holes = G.mask_holes(src)
    assert holes is not None and holes.shape == (4, 8, 8)
    assert holes[:, :, :3].all() and not holes[:, :, 3:].any()
    # R, G, B, NIR written with RGB photometry: GDAL reads NIR as alpha; NIR 0 is a value
    data[3, 0, 0] = 0
    rgbi = _write(tmp_path / "rgbi.tif", data, photometric="RGB", alpha="YES")
    with rasterio.open(rgbi) as src:
        assert src.colorinterp[3] == ColorInterp.alpha
        assert G.mask_holes(src) is None
    assert G.merge_holes(None, None) is None
    a, b = np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool)
    a[0, 0, 0], b[0, 1, 1] = True, True
    assert G.merge_holes(a, None, b).sum() == 2 and not a[0, 1, 1]  # inputs untouched
