"""CPU feature flags that decide the kernels of bf16 runs (``/proc/cpuinfo`` on Linux)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

#: CPU feature flags of native bf16 matrix arithmetic: x86 AVX512-BF16 / AMX-BF16, Arm BF16.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
#: CPU feature flag of Intel AMX bf16 tiles (Sapphire Rapids and later).
CPU_AMX_FLAG = "amx_bf16"


def _flags(cpuinfo: str) -> set[str]:
    return set(cpuinfo.split())


def bf16_flags(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo`` text lists a native bf16 matrix instruction set."""
    return bool(_flags(cpuinfo) & set(CPU_BF16_FLAGS))


def amx_flags(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo`` text lists AMX bf16 tiles."""
    return CPU_AMX_FLAG in _flags(cpuinfo)


@functools.cache
def _cpuinfo() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX-BF16).

    Reads the Linux feature flags; elsewhere asks oneDNN (``mkldnn``), which may also report
    bf16 on CPUs that only emulate it.
    """
    info = _cpuinfo()
    if info is not None:
        return bf16_flags(info)
    mkldnn = torch.backends.mkldnn.is_available()
    return bool(mkldnn and torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (False where the flags cannot be read)."""
    info = _cpuinfo()
    return info is not None and amx_flags(info)
