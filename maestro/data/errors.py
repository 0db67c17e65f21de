"""Errors raised on bad raw input: they name the file, the expectation and what was found."""

from __future__ import annotations

import os


class RawFormatError(ValueError):
    """A raw file does not match its declared format."""

    def __init__(self, path: str | os.PathLike[str], expected: str, found: str) -> None:
        self.path = str(path)
        self.expected = expected
        self.found = found
        super().__init__(f"{self.path}: expected {expected}, found {found}")


class BusyError(RuntimeError):
    """Another process holds the lock of an output (e.g. a conversion to the same store)."""


def check(ok: bool, path: str | os.PathLike[str], expected: str, found: object) -> None:
    """Raise :class:`RawFormatError` unless ``ok``."""
    if not ok:
        raise RawFormatError(path, expected, str(found))
