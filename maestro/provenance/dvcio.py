"""Read-only access to DVC's records, without importing DVC.

- :func:`dvc_vars`: the ``vars`` of ``dvc.yaml`` (the profile and config file of the stages);
- :class:`DvcRecords`: the outputs pinned by ``dvc.lock`` and, for a directory output, its
  file listing (relative path -> md5) read from the ``.dir`` object in the DVC cache.

DVC 3 hashes are the md5 of a file's bytes; cache objects live under
``<cache>/files/md5/<2 hex>/<30 hex>`` (DVC 2 used ``<cache>/<2>/<30>``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LOCK = "dvc.lock"


def dvc_vars(root: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """The inline ``vars`` of ``<root>/dvc.yaml`` merged into one mapping ({} if none)."""
    path = Path(root) / "dvc.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    out: dict[str, Any] = {}
    for entry in data.get("vars") or []:
        if isinstance(entry, dict):
            out.update(entry)
    return out


def file_md5(path: str | os.PathLike[str]) -> str:
    """md5 of a file's bytes (DVC 3's hash)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def cache_dir(root: str | os.PathLike[str] = ".") -> Path:
    """The DVC cache directory: ``[cache] dir`` of .dvc/config(.local), else ``.dvc/cache``."""
    dvc = Path(root) / ".dvc"
    found: str | None = None
    for name in ("config", "config.local"):  # the local file wins
        path = dvc / name
        if not path.is_file():
            continue
        section = ""
        for line in path.read_text().splitlines():
            text = line.strip()
            if text.startswith("["):
                section = text.strip("[]'\" ")
            elif section == "cache" and "=" in text:
                key, value = (s.strip() for s in text.split("=", 1))
                if key == "dir":
                    found = value
    if found is None:
        return dvc / "cache"
    return (dvc / os.path.expanduser(found)).resolve()


@dataclass(frozen=True)
class LockedOut:
    """One output pinned by ``dvc.lock``."""

    stage: str
    path: str  # relative POSIX path, as in dvc.lock
    md5: str | None  # "<md5>.dir" for a directory
    size: int | None
    nfiles: int | None

    @property
    def is_dir(self) -> bool:
        """Whether the output is a directory."""
        return bool(self.md5 and self.md5.endswith(".dir"))


class DvcRecords:
    """The outputs of ``<root>/dvc.lock`` and their cached directory listings."""

    def __init__(self, root: str | os.PathLike[str] = ".") -> None:
        self.root = Path(root)
        lock = self.root / LOCK
        self.present = lock.is_file()
        self.outs: list[LockedOut] = []
        if self.present:
            data = yaml.safe_load(lock.read_text()) or {}
            for stage, body in (data.get("stages") or {}).items():
                for out in (body or {}).get("outs") or []:
                    self.outs.append(
                        LockedOut(
                            stage,
                            str(out["path"]).rstrip("/"),
                            out.get("md5"),
                            out.get("size"),
                            out.get("nfiles"),
                        )
                    )
        self.cache = cache_dir(self.root)
        self._listings: dict[str, dict[str, str] | None] = {}

    def rel(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the root, POSIX."""
        p = Path(path)
        if p.is_absolute():
            p = p.resolve().relative_to(self.root.resolve())
        return p.as_posix().rstrip("/")

    def out_of(self, path: str | os.PathLike[str]) -> LockedOut | None:
        """The locked output holding ``path`` (itself or a parent directory), if any."""
        rel = self.rel(path)
        best = None
        for out in self.outs:
            if (rel == out.path or rel.startswith(out.path + "/")) and (
                best is None or len(out.path) > len(best.path)
            ):
                best = out
        return best

    def _object(self, md5: str) -> Path | None:
        for path in (
            self.cache / "files" / "md5" / md5[:2] / md5[2:],
            self.cache / md5[:2] / md5[2:],
        ):
            if path.is_file():
                return path
        return None

    def listing(self, out: LockedOut) -> dict[str, str] | None:
        """``{path relative to the output: md5}`` of a directory output (None: not cached)."""
        if not out.is_dir or out.md5 is None:
            return None
        if out.md5 not in self._listings:
            obj = self._object(out.md5)
            entries = json.loads(obj.read_text()) if obj else None
            self._listings[out.md5] = (
                {e["relpath"]: e["md5"] for e in entries} if entries is not None else None
            )
        return self._listings[out.md5]

    def recorded_md5(self, path: str | os.PathLike[str]) -> tuple[LockedOut | None, str | None]:
        """The locked output holding a file and the md5 it pins for it (None: unknown)."""
        out = self.out_of(path)
        if out is None:
            return None, None
        rel = self.rel(path)
        if rel == out.path:
            return out, None if out.is_dir else out.md5
        listing = self.listing(out)
        return out, None if listing is None else listing.get(rel[len(out.path) + 1 :])

    def recorded_tree(self, folder: str | os.PathLike[str]) -> dict[str, str] | None:
        """``{path relative to folder: md5}`` pinned for the files under ``folder``."""
        out = self.out_of(folder)
        if out is None:
            return None
        rel = self.rel(folder)
        listing = self.listing(out)
        if listing is None:
            return None
        if rel == out.path:
            return dict(listing)
        prefix = rel[len(out.path) + 1 :] + "/"
        return {k[len(prefix) :]: v for k, v in listing.items() if k.startswith(prefix)}
