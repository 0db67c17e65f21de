"""Pre-norm Transformer blocks (vit-pytorch layout, as in IGNF/MAESTRO) on fused SDPA attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.utils.cpu import cpu_has_amx


class FeedForward(nn.Module):
    """``LN -> Linear(dim, hidden) -> GELU -> Linear(hidden, dim)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, dim) -> (B, N, dim)``."""
        return self.net(x)


#: Shortest sequences that run torch's CPU fused attention in bf16 on an AMX CPU, per head
#: width (64 and wider, narrower); shorter ones, and every sequence on CPUs without AMX,
#: compute their scores in fp32. Measured forward + backward at batch 8 on Intel AMX, 2
#: threads (benchmarks/README.md): at head width 64 bf16 wins from 192 tokens (x1.4 at 409),
#: at width 32 (the Base decoder) only from ~1,000 (x1.6 at 1,024; x0.84 at 640).
AMX_BF16_ATTENTION_MIN_TOKENS = {64: 192, 0: 1024}


def _amx_bf16_attention(tokens: int, head_dim: int) -> bool:
    """Whether a CPU bf16 attention of this shape runs the bf16 fused kernel."""
    wide = AMX_BF16_ATTENTION_MIN_TOKENS[64 if head_dim >= 64 else 0]
    return tokens >= wide and cpu_has_amx()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Fused softmax attention of ``(B, H, N, d)`` tensors.

    Under CPU bf16 autocast the kernel follows the CPU and the shape: torch's CPU fused
    kernel in bf16 is slower than in fp32 on CPUs without AMX (AVX512-BF16: x1.9 at 128
    tokens, x1.1 at 441) and on AMX CPUs for short or narrow-headed sequences
    (:data:`AMX_BF16_ATTENTION_MIN_TOKENS`); there the scores are computed in fp32 (inputs
    cast up, output cast down). CUDA keeps its bf16 kernels.
    """
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        if _amx_bf16_attention(q.shape[-2], q.shape[-1]):
            return F.scaled_dot_product_attention(q, k, v)
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        return out.to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v)


class Attention(nn.Module):
    """Multi-head softmax self-attention: ``LN -> qkv (no bias) -> SDPA -> Linear``."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, dim) -> (B, N, dim)``."""
        qkv = self.to_qkv(self.norm(x))
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.heads)
        out = attention(q, k, v)  # [B, H, N, d]
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class Transformer(nn.Module):
    """``depth`` pre-norm residual blocks followed by a final LayerNorm.

    A ``depth`` of 0 is allowed and reduces to the final LayerNorm.
    """

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads, dim_head), FeedForward(dim, mlp_dim)])
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, dim) -> (B, N, dim)``."""
        for attn, ff in self.layers:
            x = x + attn(x)
            x = x + ff(x)
        return self.norm(x)
