"""Atomic zip extraction into a dataset folder.

The archive is unpacked into a temporary sibling of the target folder; wrapping folders are
stripped (a zip whose members all sit under one top-level folder, as is common and as
TreeSatAI's and FLAIR-HUB's zips may be, up to ``flatten`` levels); only then is the folder
renamed into place, replacing any previous one. A failure removes the temporary folder, so a
target folder is either absent, the previous complete one, or the new complete one.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from maestro.data.download.errors import DiskFullError, ExtractError

_IGNORED_TOP = {"__MACOSX"}  # resource-fork folders added by macOS archivers


@dataclass(frozen=True)
class ExtractInfo:
    """What an extraction wrote."""

    files: int
    bytes: int
    stripped: str  # the wrapping folder(s) removed, "" if none


def _members(zf: zipfile.ZipFile, archive: Path) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The archive's members with their path components; unsafe paths are refused."""
    out = []
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if not parts or parts[0] in _IGNORED_TOP:
            continue
        if name.startswith("/") or ".." in parts or ":" in parts[0]:
            raise ExtractError(f"{archive}: member {info.filename!r} escapes the target folder")
        out.append((info, parts))
    return out


def _wrapper(members: list[tuple[zipfile.ZipInfo, list[str]]], levels: int) -> int:
    """How many single wrapping folders to strip (at most ``levels``)."""
    depth = 0
    while depth < levels:
        tops = {parts[depth] for _, parts in members if len(parts) > depth}
        files_at_top = any(len(p) == depth + 1 and not i.is_dir() for i, p in members)
        if len(tops) != 1 or files_at_top:
            break
        depth += 1
    return depth


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _swap(new: Path, target: Path, old: Path) -> None:
    """Rename ``new`` to ``target``; a previous ``target`` is replaced (restored on failure)."""
    _remove(old)
    if target.exists() or target.is_symlink():
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old.exists():
            old.rename(target)
        raise
    _remove(old)


def extract_zip(archive: Path, target: Path, *, flatten: int = 1) -> ExtractInfo:
    """Extract ``archive`` into the folder ``target`` atomically (module docstring)."""
    tmp = target.with_name(f".{target.name}.extracting-{os.getpid()}")
    old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    _remove(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    need = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _members(zf, archive)
            if not members:
                raise ExtractError(f"{archive}: the archive holds no files")
            depth = _wrapper(members, flatten)
            need = sum(i.file_size for i, _ in members)
            free = shutil.disk_usage(target.parent).free
            if need > free:
                raise DiskFullError(
                    f"not enough space to extract {archive} into {target}: {need} bytes needed, "
                    f"{free} free"
                )
            tmp.mkdir(parents=True)
            count = 0
            for info, parts in members:
                rel = parts[depth:]
                if not rel:
                    continue
                out = tmp.joinpath(*rel)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                count += 1
        _swap(tmp, target, old)
    except OSError as err:
        _remove(tmp)
        if err.errno == errno.ENOSPC:
            raise DiskFullError(
                f"disk full while extracting {archive} into {target}: {need} bytes needed"
            ) from err
        raise ExtractError(f"cannot extract {archive} into {target}: {err}") from err
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        _remove(tmp)
        raise ExtractError(f"{archive}: not a readable zip archive ({err})") from err
    except BaseException:
        _remove(tmp)
        raise
    stripped = posixpath.join(*members[0][1][:depth]) if depth else ""
    return ExtractInfo(count, need, stripped)
