"""One verified, resumable file transfer.

Bytes go to ``<dest>.part``; a rerun or a retry resumes from its size with ``Range: bytes=N-``
(a 206 answer is appended, a 200 answer means the server ignored the range: start again from
0). The sha256 is computed while writing. Only when size and sha256 match is the file renamed
to ``dest``; on a mismatch the bytes are moved aside to ``<dest>.corrupt`` (never reused) and a
:class:`ChecksumError` is raised. A KeyboardInterrupt leaves the ``.part`` file to resume.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import re
import shutil
import threading
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from maestro.data.download.errors import (
    Cancelled,
    ChecksumError,
    DiskFullError,
    DownloadError,
    SizeAnnouncedError,
    TransferError,
    TransientError,
)
from maestro.data.download.http import HubClient, is_transient

log = logging.getLogger(__name__)
CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def part_path(dest: Path) -> Path:
    """Where the bytes of ``dest`` accumulate until verified."""
    return dest.with_name(dest.name + ".part")


def corrupt_path(dest: Path) -> Path:
    """Where bytes that failed verification are moved aside."""
    return dest.with_name(dest.name + ".corrupt")


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class FetchResult:
    """What a transfer produced."""

    sha256: str
    size: int
    resumed_from: int  # bytes of an earlier .part reused at the start
    attempts: int


def write_chunk(f: BinaryIO, data: bytes) -> None:
    """Write one chunk (a seam for tests that simulate a full disk)."""
    f.write(data)


def _write(f: BinaryIO, chunk: bytes, part: _Part, total: int | None, url: str) -> None:
    """Write a chunk; local failures (disk full, permissions) are not worth a retry."""
    try:
        write_chunk(f, chunk)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            left = None if total is None else total - part.size
            need = "an unknown number of" if left is None else f"{left} ({_human(left)})"
            raise DiskFullError(
                f"disk full while writing {part.path} ({url}): {need} more bytes needed to "
                f"finish; free space in {part.path.parent} and rerun to resume"
            ) from err
        raise DownloadError(f"cannot write {part.path}: {err}") from err


@contextlib.contextmanager
def _open_append(part: _Part, url: str) -> Iterator[BinaryIO]:
    """Open the ``.part`` file for appending; flush it to disk when the body is complete."""
    try:
        f = open(part.path, "ab")  # noqa: SIM115 (closed below, errors mapped)
    except OSError as err:
        raise DownloadError(f"cannot open {part.path} for writing: {err}") from err
    with f:
        yield f
        try:
            f.flush()
            os.fsync(f.fileno())
        except OSError as err:
            raise DownloadError(f"cannot write {part.path} ({url}): {err}") from err


class _Part:
    """The ``.part`` file and the running sha256 of its bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hasher = hashlib.sha256()
        self.size = 0
        if path.exists():
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    self.hasher.update(chunk)
                    self.size += len(chunk)

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
        self.hasher = hashlib.sha256()
        self.size = 0


def _check_space(part: _Part, size: int | None) -> None:
    if size is None:
        return
    need = size - part.size
    free = shutil.disk_usage(part.path.parent).free
    if need > free:
        raise DiskFullError(
            f"not enough space for {part.path.name}: {need} more bytes needed "
            f"({_human(need)}), {free} bytes free in {part.path.parent}"
        )


def _announced_total(status: int, headers: http.client.HTTPMessage, start: int) -> int | None:
    """The full size the response describes (Content-Range total or Content-Length)."""
    get = headers.get
    if status == 206:
        m = _CONTENT_RANGE.match(get("Content-Range", "") or "")
        if not m or int(m.group(1)) != start:
            raise TransientError(f"bad Content-Range {get('Content-Range')!r} for start {start}")
        return None if m.group(3) == "*" else int(m.group(3))
    length = get("Content-Length")
    return int(length) if length is not None else None


def _attempt(
    client: HubClient,
    url: str,
    part: _Part,
    size: int | None,
    progress: Callable[[int], None],
    cancel: threading.Event | None,
    what: str,
) -> None:
    """One HTTP request that appends to ``part``; raises on anything short of completion."""
    headers = {"Range": f"bytes={part.size}-"} if part.size else {}
    try:
        resp = client.open(url, headers)
    except urllib.error.HTTPError as err:
        if err.code == 416 and part.size:
            if size is None or part.size == size:
                return  # the .part already holds the whole file
            progress(-part.size)
            part.reset()
            raise TransientError("range not satisfiable; restarting from 0") from None
        client.raise_for(err, url, what)
        raise
    with resp:
        status = resp.status
        if status == 200 and part.size:
            log.info("%s: server ignored the Range request; restarting from 0", url)
            progress(-part.size)
            part.reset()
        elif status not in (200, 206):
            raise TransientError(f"unexpected HTTP {status}")
        total = _announced_total(status, resp.headers, part.size)
        if size is not None and total is not None and total != size:
            raise SizeAnnouncedError(
                f"{url}: the server announces {total} bytes, the manifest expects {size}: the file "
                "changed upstream or the manifest is wrong (re-pin it). Nothing was written."
            )
        _check_space(part, size if size is not None else total)
        with _open_append(part, url) as f:
            while chunk := resp.read(CHUNK):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"{url}: stopped; {part.path} kept to resume")
                _write(f, chunk, part, total, url)
                part.hasher.update(chunk)
                part.size += len(chunk)
                progress(len(chunk))
    if total is not None and part.size < total:
        raise TransientError(f"body cut at {part.size} of {total} bytes")


def fetch(
    client: HubClient,
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    what: str | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` with resume, retries and verification (module docstring).

    With ``sha256=None`` (an unpinned file) the hash is computed and returned, not checked.
    ``what`` names the file in error messages (e.g. repository, revision and path).
    """
    what = what or f"file {dest.name}"
    progress = progress or (lambda n: None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Part(part_path(dest))
    if size is not None and part.size > size:
        part.reset()
    resumed_from = part.size
    if resumed_from:
        log.info("%s: resuming from %d bytes in %s", url, resumed_from, part.path.name)
        progress(resumed_from)
    failures = attempts = 0
    try:
        while size is None or part.size != size:
            attempts += 1
            before = part.size
            try:
                _attempt(client, url, part, size, progress, cancel, what)
                break
            except Exception as err:
                if not is_transient(err):
                    raise
                failures = 1 if part.size > before else failures + 1
                if failures >= client.retry.attempts:
                    raise TransferError(
                        f"{url}: giving up after {failures} attempts without progress "
                        f"({part.size} bytes kept in {part.path}); last error: {err}"
                    ) from err
                wait = client.retry.delay(failures)
                log.warning("%s: %s; retrying from byte %d in %.1fs", url, err, part.size, wait)
                client.sleep(wait)
    except KeyboardInterrupt:
        log.warning("interrupted: %s holds %d bytes; rerun to resume", part.path, part.size)
        raise
    part.path.touch()  # an empty file needs no request but still gets a .part
    found = part.hasher.hexdigest()
    if (size is not None and part.size != size) or (sha256 is not None and found != sha256):
        bad = corrupt_path(dest)
        os.replace(part.path, bad)
        raise ChecksumError(
            url,
            expected_sha256=sha256,
            found_sha256=found,
            expected_size=size,
            found_size=part.size,
            kept=str(bad),
        )
    os.replace(part.path, dest)
    return FetchResult(found, part.size, resumed_from, attempts)
