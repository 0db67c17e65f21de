"""Zstd decoding into a preallocated array, with a reused decompression context.

``numcodecs.Zstd.decode`` creates a new decompression context for every frame, which costs
~8 µs: as much as decoding a small inner chunk (the dates or a mask of one sample). When
the system libzstd is available (it is on common Linux systems), frames are decoded here
through it with one context per thread, straight into the caller's array; otherwise
through numcodecs. Either way the decoded size must be exactly the array's size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from typing import Any

import numpy as np
from numcodecs import Zstd

_LOCAL = threading.local()
_NUMCODECS = Zstd()


@functools.lru_cache(maxsize=1)
def _libzstd() -> Any | None:
    name = ctypes.util.find_library("zstd")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.ZSTD_createDCtx.restype = ctypes.c_void_p
        lib.ZSTD_createDCtx.argtypes = []
        lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
        lib.ZSTD_decompressDCtx.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


def _context(lib: Any) -> int:
    """This thread's decompression context (a new one after fork)."""
    key = (os.getpid(), threading.get_ident())
    if getattr(_LOCAL, "key", None) != key:
        _LOCAL.key, _LOCAL.dctx = key, lib.ZSTD_createDCtx()
    return _LOCAL.dctx


def decode_into(frame: bytes, out: np.ndarray) -> np.ndarray:
    """Decode the zstd ``frame`` into the C-contiguous array ``out``; return ``out``.

    Raises:
        ValueError: the frame is corrupt or does not decode to exactly ``out.nbytes``.
    """
    if not out.flags.c_contiguous:
        raise ValueError("decode_into needs a C-contiguous array")
    lib = _libzstd()
    if lib is None:
        try:
            data = _NUMCODECS.decode(frame)
        except RuntimeError as err:
            raise ValueError(f"corrupt zstd frame: {err}") from err
        if len(data) != out.nbytes:
            raise ValueError(f"zstd frame of {len(data)} bytes, expected {out.nbytes}")
        out.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8)
        return out
    size = lib.ZSTD_decompressDCtx(_context(lib), out.ctypes.data, out.nbytes, frame, len(frame))
    if lib.ZSTD_isError(size):
        raise ValueError(f"corrupt zstd frame: {lib.ZSTD_getErrorName(size).decode()}")
    if size != out.nbytes:
        raise ValueError(f"zstd frame of {size} bytes, expected {out.nbytes}")
    return out
