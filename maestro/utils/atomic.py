"""Atomic outputs: write to a temporary sibling path, rename only on success.

A failed or interrupted step therefore never leaves a half-written output at the final path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class RefusedOutputError(ValueError):
    """An output path holds something this program did not write (it would be deleted)."""


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_replaceable(
    final: str | os.PathLike[str],
    owned: Callable[[Path], bool],
    what: str,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Refuse an output path whose replacement would delete data this program did not write.

    ``final`` may be absent, an empty directory, or a directory that ``owned`` recognises as
    a previous output (``what`` names it in the message). It must never be, or contain, one
    of ``inputs`` (e.g. ``--out`` equal to the raw root). Raises :class:`RefusedOutputError`
    naming the path, what was expected and what was found; nothing is touched.
    """
    final = Path(final)
    target = final.resolve()
    for inp in inputs:
        src = Path(inp).resolve()
        if src == target or target in src.parents:
            raise RefusedOutputError(
                f"{final}: the output would replace the input {inp} (it contains it); "
                "choose another output path"
            )
    if not (final.exists() or final.is_symlink()):
        return
    if final.is_symlink() or not final.is_dir():
        raise RefusedOutputError(
            f"{final}: expected no file there or a {what}, found a "
            f"{'symbolic link' if final.is_symlink() else 'file'}; refusing to replace it"
        )
    if next(final.iterdir(), None) is None or owned(final):
        return
    raise RefusedOutputError(
        f"{final}: expected an empty directory or a {what}, found a directory of other "
        "files; refusing to replace it (remove it yourself, or choose another output path)"
    )


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it to ``final`` if the block succeeds.

    Works for files and directories. An existing ``final`` is replaced. On any exception
    the temporary path is removed and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic write produced nothing at {tmp}")
        if final.exists() or final.is_symlink():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            tmp.rename(final)
            _remove(old)
        else:
            tmp.rename(final)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
