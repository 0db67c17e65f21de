"""The CPU bf16 kernels of attention and patch embedding: same function as fp32, chosen per CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maestro.model import layers
from maestro.model.patchify import Patchify


def _recording_sdpa(monkeypatch) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    real = F.scaled_dot_product_attention

    def record(q, k, v, *args, **kwargs):
        seen.append(q.dtype)
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(layers.F, "scaled_dot_product_attention", record)
    return seen


@pytest.mark.parametrize(
    ("amx", "tokens", "head_dim", "kernel"),
    [
        (False, 441, 64, torch.float32),  # AVX512-BF16 without AMX: fp32 scores at every length
        (True, 128, 64, torch.float32),  # AMX, short sequence: fp32 is faster
        (True, 192, 64, torch.bfloat16),
        (True, 441, 64, torch.bfloat16),
        (True, 441, 32, torch.float32),  # narrow heads (the Base decoder): fp32 up to ~1,000
        (True, 1024, 32, torch.bfloat16),
    ],
)
def test_cpu_bf16_attention_kernel_follows_the_cpu_and_agrees_with_fp32(
    monkeypatch, amx, tokens, head_dim, kernel
):
    monkeypatch.setattr(layers, "cpu_has_amx", lambda: amx)
    seen = _recording_sdpa(monkeypatch)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, tokens, head_dim, generator=g) for _ in range(3))
    out = layers.attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert seen == [kernel]
    assert out.dtype == torch.bfloat16 and out.shape == (1, 2, tokens, head_dim)
    exact = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out.float(), exact, atol=3e-2, rtol=3e-2)


def test_fp32_attention_is_the_plain_fused_kernel(monkeypatch):
    seen = _recording_sdpa(monkeypatch)
    q = torch.randn(1, 2, 300, 8)
    assert torch.equal(layers.attention(q, q, q), F.scaled_dot_product_attention(q, q, q))
    assert seen == [torch.float32, torch.float32]


def _patchify() -> tuple[Patchify, torch.Tensor]:
    torch.manual_seed(0)
    embed = Patchify((3, 2), patch=4, dim=16)
    return embed, torch.randn(2, 3, 5, 12, 8)  # [B, T, C, H, W]


def test_bf16_patch_matmul_computes_the_convolution():
    embed, x = _patchify()
    exact = embed(x)  # fp32: the convolutions themselves
    assert exact.shape == (2, 2, 3, 6, 16)  # [B, G, T, (12/4)*(8/4), D]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = embed(x)
    torch.testing.assert_close(fast.float(), exact, atol=5e-2, rtol=5e-2)
    # the convolution under the same autocast: the matmul is the same bf16 function
    conv = torch.stack(
        [
            norm(proj(part.flatten(0, 1))).flatten(2).transpose(1, 2).unflatten(0, (2, 3))
            for part, proj, norm in zip(x.split((3, 2), dim=2), embed.proj, embed.norm, strict=True)
        ],
        dim=1,
    )
    torch.testing.assert_close(fast.float(), conv.float(), atol=5e-2, rtol=5e-2)


def test_bf16_patch_matmul_gives_the_convolution_gradients():
    embed, x = _patchify()
    probe = torch.randn(embed(x).shape, generator=torch.Generator().manual_seed(1))
    (embed(x) * probe).sum().backward()
    exact = [p.grad.clone() for p in embed.parameters()]
    embed.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = embed(x)
    (out.float() * probe).sum().backward()
    for got, want in zip((p.grad for p in embed.parameters()), exact, strict=True):
        assert got.dtype == torch.float32  # gradients of the fp32 master weights
        assert ((got - want).norm() / want.norm()).item() < 2e-2  # bf16 rounding only


def test_patch_sizes_that_do_not_divide_the_image_keep_the_convolution():
    embed, x = _patchify()
    x = x[..., :11, :]  # 11 rows, p = 4: the convolution drops the last 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = embed(x)
    assert out.shape == (2, 2, 3, 4, 16)  # (11 // 4) * (8 / 4) tokens
