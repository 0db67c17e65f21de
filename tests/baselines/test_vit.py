"""The shared ViT pieces: sin-cos codes as MAE / Prithvi define them, grid resizing."""

import math

import numpy as np
import pytest
import torch

from maestro.baselines.vit import Block, resize_grid, sincos_1d, sincos_2d, sincos_3d


def _np_1d(dim, pos):
    omega = 1.0 / 10000 ** (np.arange(dim // 2) / (dim / 2.0))
    out = np.outer(np.asarray(pos, dtype=float).reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def test_sincos_codes_follow_the_published_formulas():
    pos = torch.tensor([0.0, 1.0, 5.0, 2020.0])
    assert np.allclose(sincos_1d(8, pos).numpy(), _np_1d(8, pos.numpy()), atol=1e-6)
    # 2-D: first half codes the column, second the row, row-major tokens
    grid = 3
    code = sincos_2d(8, grid).numpy()
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    assert np.allclose(code, np.concatenate([_np_1d(4, cols), _np_1d(4, rows)], 1), atol=1e-6)
    # 3-D (Prithvi): 6/16 column, 6/16 row, 4/16 frame, tokens ordered (frame, row, column)
    code = sincos_3d(32, 2, grid).numpy()
    frame, rest = np.divmod(np.arange(2 * grid * grid), grid * grid)
    rows, cols = np.divmod(rest, grid)
    expected = np.concatenate([_np_1d(12, cols), _np_1d(12, rows), _np_1d(8, frame)], 1)
    assert code.shape == (18, 32) and np.allclose(code, expected, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 16"):
        sincos_3d(24, 1, 2)


def test_resize_grid_keeps_leading_axes_and_identity():
    pos = torch.randn(2, 16, 8)  # two frames of a 4 x 4 grid
    assert resize_grid(pos, 4, 4) is pos
    out = resize_grid(pos, 4, 2, align_corners=True)
    assert out.shape == (2, 4, 8)
    # corners aligned: the corner tokens are kept exactly
    assert torch.allclose(out[:, 0], pos[:, 0], atol=1e-6)
    assert torch.allclose(out[:, 3], pos[:, 15], atol=1e-6)


def test_block_has_the_timm_layout():
    names = {k: tuple(v.shape) for k, v in Block(16, 2).state_dict().items()}
    assert names == {
        "norm1.weight": (16,), "norm1.bias": (16,), "attn.qkv.weight": (48, 16),
        "attn.qkv.bias": (48,), "attn.proj.weight": (16, 16), "attn.proj.bias": (16,),
        "norm2.weight": (16,), "norm2.bias": (16,), "mlp.fc1.weight": (64, 16),
        "mlp.fc1.bias": (64,), "mlp.fc2.weight": (16, 64), "mlp.fc2.bias": (16,),
    }  # fmt: skip
    torch.manual_seed(0)
    block = Block(16, 2)
    x = torch.randn(2, 5, 16)
    # attention written out: softmax(q k^T / sqrt(e)) v per head
    h = block.norm1(x)
    q, k, v = block.attn.qkv(h).reshape(2, 5, 3, 2, 8).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1) @ v
    y = x + block.attn.proj(att.transpose(1, 2).reshape(2, 5, 16))
    y = y + block.mlp.fc2(torch.nn.functional.gelu(block.mlp.fc1(block.norm2(y))))
    assert torch.allclose(block(x), y, atol=1e-5)
