"""Errors of the downloader. Each message names the file or URL, what was expected and what
was found, and what to do about it."""

from __future__ import annotations


class ManifestError(ValueError):
    """A download manifest is malformed: names the manifest file and the offending key."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


class DownloadError(RuntimeError):
    """Base class of the errors raised while downloading or pinning."""


class NotFoundError(DownloadError):
    """HTTP 404: the repository, the revision or the path does not exist (or is private)."""


class AuthError(DownloadError):
    """HTTP 401/403: the token is missing or was refused."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not match the manifest's size or sha256."""

    def __init__(
        self,
        url: str,
        *,
        expected_sha256: str | None,
        found_sha256: str | None,
        expected_size: int | None,
        found_size: int,
        kept: str | None,
    ) -> None:
        self.url = url
        self.expected_sha256 = expected_sha256
        self.found_sha256 = found_sha256
        self.expected_size = expected_size
        self.found_size = found_size
        self.kept = kept
        parts = [f"checksum mismatch for {url}:"]
        if expected_size is not None and expected_size != found_size:
            parts.append(f"expected {expected_size} bytes, found {found_size} bytes;")
        if found_sha256 is not None:
            parts.append(f"expected sha256 {expected_sha256}, found {found_sha256}.")
        if kept:
            parts.append(f"The bytes were moved aside to {kept} (never reused).")
        parts.append(
            "Rerun to download again; if it persists the file changed upstream or the manifest "
            "is wrong (re-pin it)."
        )
        super().__init__(" ".join(parts))


class SizeAnnouncedError(DownloadError):
    """The server announces a size that differs from the manifest's (nothing was written)."""


class UnpinnedError(DownloadError):
    """The manifest has files (or include patterns) without a pinned sha256."""


class DiskFullError(DownloadError):
    """No space left on the device (ENOSPC), or not enough free space to start."""


class TransferError(DownloadError):
    """The transfer kept failing (connection errors, 5xx, truncated bodies) after all retries."""


class ExtractError(DownloadError):
    """A zip archive could not be extracted (corrupt member, unsafe path)."""


class Cancelled(DownloadError):
    """Another download of the same run failed or was interrupted: this one stopped early."""


class TransientError(DownloadError):
    """An attempt failed in a way worth retrying (used internally by the retry loop)."""
