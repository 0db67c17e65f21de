"""Direct reads and writes of the sharded store arrays, without zarr-python's async path.

zarr-python 3.1 costs ~0.8 ms per ``array[i]`` on a 2-core machine whatever the size of the
read (a round trip through zarr's event-loop thread, indexers, codec pipeline), and a
training item touches up to ten arrays. Writing a shard through it holds several copies
of the shard in worker threads, and over many shards the per-thread malloc arenas
fragment: the converter's peak memory grew by a fifth from 2 to 13 shards. The arrays the
converter creates (``store_layout.create_arrays``) have one fixed structure, which this
module reads and writes with plain file calls:

- one shard file per ``S`` consecutive samples, spanning every other axis (rounded up to
  whole inner chunks), at the default chunk key ``c/<k>/0/.../0``; inner chunks
  ``(1, *chunk)`` in C order, edge chunks padded with the fill value;
- codecs ``sharding_indexed`` with inner ``bytes`` (little endian) + ``zstd`` and index
  ``bytes`` (little endian) + ``crc32c``, index at the end of the shard: ``(S, *grid, 2)``
  uint64 ``(offset, nbytes)`` pairs then the index's 4-byte CRC32C; ``(2**64-1, 2**64-1)``
  marks an inner chunk that is not stored because it equals the fill value (zarr's
  ``write_empty_chunks=False``), and a shard whose chunks all equal it has no file.

zarr-python reads these files (tested). A read of sample ``i`` opens one shard file, reads
the sample's slice of the index (one ``pread``) and only the inner chunks that intersect
the selection (one ``pread`` and one zstd decode each). A shard is written to a temporary
file renamed into place, one encoded chunk at a time. Nothing is cached between calls, so
objects are safe to use after ``fork``. :meth:`ShardedArray.of` returns None for an array
with any other structure; callers then use zarr-python.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numcodecs import Zstd
from zarr.codecs import (
    BytesCodec,
    Crc32cCodec,
    ShardingCodec,
    ShardingCodecIndexLocation,
    ZstdCodec,
)
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.core.metadata import ArrayV3Metadata

from maestro.store.zstd_decode import decode_into

#: Index entry of an inner chunk that is absent from its shard.
MISSING = 2**64 - 1


@functools.lru_cache(maxsize=16)
def _zstd(level: int, checksum: bool) -> Zstd:
    return Zstd(level=level, checksum=checksum)


def _little(codec: Any) -> bool:
    return isinstance(codec, BytesCodec) and (
        codec.endian is None or codec.endian.value == "little"
    )


@dataclass(frozen=True)
class ShardedArray:
    """One sharded array of a store, read one sample and written one shard at a time.

    Attributes:
        path: the array directory.
        shape: full array shape ``(N, *sample_shape)``.
        samples_per_shard: ``S``, the leading shard dimension.
        chunk: per-sample inner chunk shape (without the leading 1).
        grid: inner chunks per shard along each per-sample axis.
        dtype: little-endian storage dtype.
        fill_value: value of chunks that are absent.
        separator: chunk key separator.
        zstd_level: zstd level of the inner chunks.
        zstd_checksum: zstd frame checksum flag.
    """

    path: Path
    shape: tuple[int, ...]
    samples_per_shard: int
    chunk: tuple[int, ...]
    grid: tuple[int, ...]
    dtype: np.dtype
    fill_value: Any
    separator: str
    zstd_level: int
    zstd_checksum: bool

    @classmethod
    def of(cls, array: zarr.Array, path: Path) -> ShardedArray | None:
        """The sharded array ``array`` stored at ``path``; None if laid out another way."""
        md = array.metadata
        if not isinstance(md, ArrayV3Metadata) or len(md.codecs) != 1:
            return None
        sharding, keys = md.codecs[0], md.chunk_key_encoding
        if not isinstance(sharding, ShardingCodec) or not isinstance(keys, DefaultChunkKeyEncoding):
            return None
        inner, index = tuple(sharding.codecs), tuple(sharding.index_codecs)
        shard = tuple(md.chunk_grid.chunk_shape)  # type: ignore[attr-defined]
        chunk = tuple(sharding.chunk_shape)
        ok = (
            sharding.index_location == ShardingCodecIndexLocation.end
            and len(inner) == 2
            and _little(inner[0])
            and isinstance(inner[1], ZstdCodec)
            and len(index) == 2
            and _little(index[0])
            and isinstance(index[1], Crc32cCodec)
            and chunk[0] == 1
            and all(  # one shard spans every per-sample axis
                s >= n and s % c == 0
                for s, n, c in zip(shard[1:], array.shape[1:], chunk[1:], strict=True)
            )
        )
        if not ok:
            return None
        zstd = inner[1]
        assert isinstance(zstd, ZstdCodec)
        return cls(
            path=Path(path),
            shape=tuple(array.shape),
            samples_per_shard=shard[0],
            chunk=chunk[1:],
            grid=tuple(s // c for s, c in zip(shard[1:], chunk[1:], strict=True)),
            dtype=np.dtype(array.dtype).newbyteorder("<"),
            fill_value=md.fill_value,
            separator=keys.separator,
            zstd_level=zstd.level,
            zstd_checksum=zstd.checksum,
        )

    @property
    def _codec(self) -> Zstd:
        return _zstd(self.zstd_level, self.zstd_checksum)

    def _shard_file(self, k: int) -> str:
        sep = self.separator
        return f"{self.path}{os.sep}c{sep}{k}" + f"{sep}0" * len(self.chunk)

    def shard_path(self, k: int) -> Path:
        """File of shard ``k`` (samples ``[k * S, (k + 1) * S)``)."""
        return Path(self._shard_file(k))

    def _bounds(self, selection: tuple[slice, ...]) -> list[tuple[int, int]]:
        dims = self.shape[1:]
        sel = [*selection, *(slice(None),) * (len(dims) - len(selection))]
        out = []
        for axis, (s, n) in enumerate(zip(sel, dims, strict=True)):
            start, stop, step = s.indices(n)
            if step != 1:
                raise ValueError(f"{self.path}: axis {axis + 1}: only step-1 slices, got {s}")
            out.append((start, max(start, stop)))
        return out

    def read(self, i: int, selection: tuple[slice, ...]) -> np.ndarray:
        """``array[i][selection]`` for step-1 slices over the per-sample axes.

        Args:
            i: sample index in ``[0, N)``.
            selection: one slice per per-sample axis (missing trailing axes = whole axis).

        Returns:
            A new array of the selected shape, in native byte order.
        """
        bounds = self._bounds(selection)
        native = self.dtype.newbyteorder("=")
        shape = [b - a for a, b in bounds]
        per_sample = math.prod(self.grid)
        path = self._shard_file(i // self.samples_per_shard)
        try:
            fd = os.open(path, os.O_RDONLY) if min(shape) > 0 else -1
        except FileNotFoundError:
            fd = -1  # every chunk of the shard equals the fill value
        if fd < 0:
            return np.full(shape, self.fill_value, dtype=native)
        try:
            index_start = os.fstat(fd).st_size - 4 - 16 * per_sample * self.samples_per_shard
            row = i % self.samples_per_shard
            raw = b""
            if index_start >= 0:
                raw = os.pread(fd, 16 * per_sample, index_start + 16 * per_sample * row)
            if len(raw) != 16 * per_sample:
                raise OSError(f"{path}: truncated shard (no index for sample {i})")
            entries = np.frombuffer(raw, "<u8").reshape(*self.grid, 2)
            ranges = [
                range(a // c, (b - 1) // c + 1)
                for (a, b), c in zip(bounds, self.chunk, strict=True)
            ]
            where = f"{path} (sample {i})"
            if all(len(r) == 1 for r in ranges):  # the common case: inside one inner chunk
                coords = tuple(r[0] for r in ranges)
                chunk = self._chunk(fd, entries[coords], index_start, where)
                if chunk is None:
                    return np.full(shape, self.fill_value, dtype=native)
                cut = tuple(
                    slice(a - k * c, b - k * c)
                    for k, (a, b), c in zip(coords, bounds, self.chunk, strict=True)
                )
                part = chunk[cut]
                return part if part.flags.c_contiguous else np.ascontiguousarray(part)
            out = np.full(shape, self.fill_value, dtype=native)
            for coords in itertools.product(*ranges):
                chunk = self._chunk(fd, entries[coords], index_start, where)
                if chunk is None:
                    continue
                src, dst = [], []
                for k, (a, b), c in zip(coords, bounds, self.chunk, strict=True):
                    lo, hi = max(a, k * c), min(b, (k + 1) * c)
                    src.append(slice(lo - k * c, hi - k * c))
                    dst.append(slice(lo - a, hi - a))
                out[tuple(dst)] = chunk[tuple(src)]
        finally:
            os.close(fd)
        return out

    def _chunk(self, fd: int, entry: np.ndarray, end: int, where: str) -> np.ndarray | None:
        """Decode the inner chunk whose index entry is ``(offset, nbytes)``; None if absent."""
        offset, nbytes = int(entry[0]), int(entry[1])
        if offset == MISSING and nbytes == MISSING:
            return None
        if offset + nbytes > end:
            raise OSError(f"{where}: an inner chunk lies beyond the data of the shard")
        out = np.empty(self.chunk, dtype=self.dtype)
        try:
            decode_into(os.pread(fd, nbytes, offset), out)
        except ValueError as err:
            raise OSError(f"{where}: inner chunk: {err}") from err
        return out if self.dtype.isnative else out.astype(self.dtype.newbyteorder("="))

    def write_shard(self, k: int, block: np.ndarray) -> None:
        """Write shard ``k`` whole: ``block`` = samples ``[k * S, k * S + n)``, ``(n, *sample)``.

        ``n`` is ``S``, or what is left at the end of the array. The file is replaced
        atomically; memory beyond ``block`` is one encoded inner chunk.
        """
        start, dims = k * self.samples_per_shard, self.shape[1:]
        n = min(self.samples_per_shard, self.shape[0] - start)
        if block.shape != (n, *dims):
            raise ValueError(f"{self.path}: shard {k} needs shape {(n, *dims)}, got {block.shape}")
        final = self.shard_path(k)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        index = np.full((self.samples_per_shard, *self.grid, 2), MISSING, dtype="<u8")
        empty = np.full(self.chunk, self.fill_value, dtype=self.dtype).tobytes()
        codec, offset = self._codec, 0
        try:
            with tmp.open("wb") as f:
                for r in range(n):
                    for coords in itertools.product(*(range(g) for g in self.grid)):
                        cut = tuple(
                            slice(c * w, min((c + 1) * w, d))
                            for c, w, d in zip(coords, self.chunk, dims, strict=True)
                        )
                        piece = block[(r, *cut)]
                        if piece.shape != self.chunk:  # an edge chunk, padded
                            full = np.full(self.chunk, self.fill_value, dtype=self.dtype)
                            full[tuple(slice(0, s) for s in piece.shape)] = piece
                            piece = full
                        raw = np.ascontiguousarray(piece, dtype=self.dtype).tobytes()
                        if raw == empty:
                            continue
                        data = codec.encode(raw)
                        f.write(data)
                        index[(r, *coords)] = (offset, len(data))
                        offset += len(data)
                table = index.tobytes()
                f.write(table + np.uint32(google_crc32c.value(table)).astype("<u4").tobytes())
            if offset == 0:  # nothing but fill values: zarr stores no file
                tmp.unlink()
                final.unlink(missing_ok=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
