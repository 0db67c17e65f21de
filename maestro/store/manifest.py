"""The store manifest: every file of a store with its size and sha256, and one content hash.

``maestro_manifest.json`` sits inside the store directory and lists every other file
(relative POSIX path, size, sha256), sorted by path. The content hash is the sha256 of the
``path<TAB>size<TAB>sha256`` lines: two stores with the same files have the same hash, and
provenance records it as the store's identity without re-hashing the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

FORMAT = "maestro-store"
MANIFEST_NAME = "maestro_manifest.json"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:  # one reused 256 KiB buffer
        return hashlib.file_digest(f, "sha256").hexdigest()


def _content_hash(files: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['path']}\t{f['size']}\t{f['sha256']}\n".encode())
    return h.hexdigest()


def _list_files(root: Path) -> list[dict[str, Any]]:
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != MANIFEST_NAME and not p.name.startswith(".snakemake"):
            files.append({"path": rel, "size": p.stat().st_size, "sha256": _sha256(p)})
    return files


def write_manifest(root: str | os.PathLike[str]) -> str:
    """Write ``maestro_manifest.json`` in the store directory ``root``; return the content hash."""
    root = Path(root)
    files = _list_files(root)
    digest = _content_hash(files)
    manifest = {"format": FORMAT, "content_hash": digest, "files": files}
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return digest


def store_hash(root: str | os.PathLike[str]) -> str:
    """Content hash of a converted store, read from its manifest (no file is hashed)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; was {root} written by maestro convert?")
    return str(json.loads(path.read_text())["content_hash"])


def verify_manifest(root: str | os.PathLike[str]) -> list[str]:
    """Re-hash the store; return one line per difference from the manifest (empty = intact)."""
    root = Path(root)
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    found = {f["path"]: f for f in _list_files(root)}
    problems = [f"missing: {p}" for p in sorted(set(listed) - set(found))]
    problems += [f"unlisted: {p}" for p in sorted(set(found) - set(listed))]
    problems += [f"changed: {p}" for p in sorted(set(listed) & set(found)) if listed[p] != found[p]]
    if _content_hash(manifest["files"]) != manifest["content_hash"]:
        problems.append("content_hash does not match the file list")
    return problems
