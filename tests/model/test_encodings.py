"""Sin-cos grids, their resampling to token grids, and date codes vs direct computations."""

import math

import numpy as np
import pytest
import torch

from maestro.model.encodings import encode_dates, resample_grid, sincos_grid


def test_sincos_grid_values_match_formula():
    dim, date_dim, size = 24, 8, 5
    g = sincos_grid(size, dim, date_dim).numpy()
    k = (dim - date_dim) // 4
    omega = 10000.0 ** (-np.arange(k) / (k - 1))
    y, x = 3, 1
    expected = np.concatenate(
        [np.sin(x * omega), np.cos(x * omega), np.sin(y * omega), np.cos(y * omega), np.zeros(8)]
    )
    np.testing.assert_allclose(g[y, x], expected, atol=1e-6)
    assert g.shape == (size, size, dim)
    assert np.all(g[..., -date_dim:] == 0)


def test_sincos_grid_rejects_bad_dim():
    with pytest.raises(ValueError, match="dim - date_dim"):
        sincos_grid(4, 23, 8)


def test_resample_grid_block_mean_when_divisible():
    grid = torch.arange(6 * 6 * 2, dtype=torch.float32).reshape(6, 6, 2)
    out = resample_grid(grid, 3)  # 2x2 blocks
    assert out.shape == (9, 2)
    expected = grid.reshape(3, 2, 3, 2, 2).mean(dim=(1, 3)).reshape(9, 2)
    torch.testing.assert_close(out, expected)


def test_resample_grid_resizes_first_when_not_divisible():
    grid = sincos_grid(10, 16, 8)
    out = resample_grid(grid, 3)  # 10 -> bilinear 9 (= 3 * round(10 / 3)) -> 3x3 block means
    img = grid.permute(2, 0, 1)[None]
    big = torch.nn.functional.interpolate(img, size=(9, 9), mode="bilinear", align_corners=False)
    expected = big.reshape(16, 3, 3, 3, 3).mean(dim=(2, 4)).permute(1, 2, 0).reshape(9, 16)
    torch.testing.assert_close(out, expected)


def test_resample_identity_when_grid_equals_tokens():
    grid = sincos_grid(8, 16, 8)
    torch.testing.assert_close(resample_grid(grid, 8), grid.reshape(64, 16))


def test_date_encoding_values():
    dates = torch.tensor([[[2020, 100, 0], [2019, 182, 12]]])
    ref = torch.tensor([[2019, 182, 0]])
    code = encode_dates(dates, ref, dim=20, date_dim=8)
    assert code.shape == (1, 2, 20)
    assert torch.all(code[..., :12] == 0)
    delta = (2020 + 100 / 365.25) - (2019 + 182 / 365.25)
    doy = 100 / 365.25
    expected = [delta] * 4 + [math.sin(2 * math.pi * doy), math.cos(2 * math.pi * doy), 0.0, 1.0]
    np.testing.assert_allclose(code[0, 0, 12:].numpy(), expected, atol=1e-6)
    # same day as the reference: delta 0; hour 12 -> sin(pi)=0, cos(pi)=-1
    np.testing.assert_allclose(code[0, 1, 12:16].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(code[0, 1, 18:].numpy(), [0.0, -1.0], atol=1e-6)


def test_date_encoding_can_be_switched_off():
    dates = torch.tensor([[[2020, 100, 0]]])
    code = encode_dates(dates, torch.tensor([[2019, 1, 0]]), dim=12, scale=0.0)
    assert torch.all(code == 0)
