"""Pin a manifest: resolve branches to commit shas and fill every file's sha256 and size.

For each source, ``pin`` resolves ``revision`` (or, with ``update=True``, the recorded ``ref``
branch) to a commit sha, expands the ``include`` globs over the repository tree at that sha
into explicit files, and fills the sha256 and size of every file from the tree listing: a
Git-LFS file's ``lfs.oid`` is its sha256. Small files stored in git itself only carry a git
blob sha1 (``oid``); they are fetched, checked against that sha1, and hashed.

A sha256 or size already in the manifest that disagrees with the Hub is an error (the pinned
content would silently change), unless ``update=True``.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maestro.data.download.errors import DownloadError, NotFoundError
from maestro.data.download.globs import glob_base
from maestro.data.download.http import HubClient
from maestro.data.download.manifest import (
    FileEntry,
    Manifest,
    Source,
    check_targets,
    dump_manifest,
    is_commit,
    load_manifest,
)

log = logging.getLogger(__name__)


class _Tree:
    """Cached tree listings of one source at one commit."""

    def __init__(self, client: HubClient, source: Source, sha: str) -> None:
        self.client, self.source, self.sha = client, source, sha
        self._cache: dict[tuple[str, bool], list[dict[str, Any]]] = {}

    def listing(self, folder: str, recursive: bool) -> list[dict[str, Any]]:
        key = (folder, recursive)
        if key not in self._cache:
            s = self.source
            self._cache[key] = list(
                self.client.list_tree(s.repo_type, s.repo, self.sha, folder, recursive)
            )
        return self._cache[key]

    def lookup(self, path: str) -> dict[str, Any]:
        folder = posixpath.dirname(path)
        for entry in self.listing(folder, False):
            if entry.get("path") == path:
                return entry
        raise NotFoundError(
            f"{self.source.repo_type} {self.source.repo} at {self.sha}: no file {path!r} "
            f"(listed folder {folder or '/'!r}); fix the path in the manifest"
        )


def tree_hashes(entry: dict[str, Any]) -> tuple[str | None, int, str | None]:
    """``(sha256 or None, size, git blob sha1 or None)`` of a tree-listing file entry."""
    lfs = entry.get("lfs")
    if isinstance(lfs, dict) and isinstance(lfs.get("oid"), str):
        return lfs["oid"].lower(), int(lfs.get("size", entry.get("size", 0))), None
    return None, int(entry.get("size", 0)), entry.get("oid")


def _expand(tree: _Tree) -> list[tuple[FileEntry, str | None]]:
    """Files matched by the include globs, with the git blob sha1 of non-LFS files."""
    source, sha = tree.source, tree.sha
    found: dict[str, tuple[FileEntry, str | None]] = {}
    for rule in source.include:
        base, recursive = glob_base(rule.glob)
        matched = [e for e in tree.listing(base, recursive) if rule.matches(str(e.get("path")))]
        if not matched:
            raise DownloadError(
                f"{source.repo_type} {source.repo} at {sha}: include {rule.glob!r} matched no "
                f"file (listed {base or '/'!r}, recursive={recursive})"
            )
        for e in matched:
            sha256, size, oid = tree_hashes(e)
            found.setdefault(e["path"], (rule.entry(e["path"], sha256, size), oid))
    return [found[p] for p in sorted(found)]


def expand_rules(client: HubClient, source: Source, sha: str) -> list[FileEntry]:
    """The files matched by a source's include globs at commit ``sha`` (sorted by path).

    Entries carry the LFS sha256 and size where the listing gives them, else ``sha256=None``.
    A glob that matches nothing is an error.
    """
    return [entry for entry, _ in _expand(_Tree(client, source, sha))]


def _hash_git_file(client: HubClient, source: Source, sha: str, path: str, oid: str | None) -> str:
    """Fetch a file stored in git (not LFS), check its blob sha1, return its sha256."""
    url = client.file_url(source.repo_type, source.repo, sha, path)
    body, _ = client.get_bytes(url, f"file {path} of {source.repo}")
    blob = hashlib.sha1(b"blob %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
    if oid is not None and blob != oid:
        raise DownloadError(f"{url}: git blob sha1 {blob} differs from the tree listing's {oid}")
    return hashlib.sha256(body).hexdigest()


def _filled(
    client: HubClient, tree: _Tree, f: FileEntry, info: dict[str, Any], update: bool
) -> FileEntry:
    sha256, size, oid = tree_hashes(info)
    s = tree.source
    if sha256 is None:
        sha256 = _hash_git_file(client, s, tree.sha, f.path, oid)
    for key, old, new in (("sha256", f.sha256, sha256), ("size", f.size, size)):
        if old is not None and old != new:
            msg = (
                f"{s.repo}:{f.path}: the manifest pins {key} {old}, the Hub has {new} at {tree.sha}"
            )
            if not update:
                raise DownloadError(msg + "; pass update=True (--update) to accept the new content")
            log.warning("%s; updating", msg)
    return replace(f, sha256=sha256, size=size)


def pin_source(client: HubClient, s: Source, *, update: bool = False) -> Source:
    """One source pinned: commit sha, expanded include globs, every sha256 and size."""
    ref = s.ref if s.ref is not None else (None if is_commit(s.revision) else s.revision)
    wanted = ref if (update and ref) else s.revision
    sha = client.resolve_revision(s.repo_type, s.repo, wanted)
    if sha != s.revision:
        log.info("%s: %s -> %s", s.repo, wanted, sha)
    tree = _Tree(client, s, sha)
    explicit = [f for f in s.files if not f.from_include]
    files = [_filled(client, tree, f, tree.lookup(f.path), update) for f in explicit]
    paths = {f.path for f in explicit}
    for g, oid in _expand(tree) if s.include else []:
        if g.path in paths:
            continue
        if g.sha256 is None:
            g = replace(g, sha256=_hash_git_file(client, s, sha, g.path, oid))
        files.append(g)
    expanded = sha if s.include else None
    return replace(s, revision=sha, ref=ref, expanded_at=expanded, files=tuple(files))


def pin(manifest: Manifest, client: HubClient | None = None, *, update: bool = False) -> Manifest:
    """The manifest with every source pinned (module docstring)."""
    client = client or HubClient()
    sources = tuple(pin_source(client, s, update=update) for s in manifest.sources)
    check_targets(((s.repo, f) for s in sources for f in s.files), manifest.origin)
    return replace(manifest, sources=sources)


def pin_manifest_file(
    path: str | Path,
    out: str | Path | None = None,
    *,
    client: HubClient | None = None,
    update: bool = False,
) -> Manifest:
    """Pin the manifest at ``path`` and write it (atomically) to ``out`` (default: in place)."""
    client = client or HubClient()
    pinned = pin(load_manifest(path), client, update=update)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    header = (
        f"Download manifest {pinned.name!r}, pinned by `maestro pin-manifest` on {when}\n"
        f"against {client.endpoint}. See docs/downloads.md."
    )
    dump_manifest(pinned, out or path, header)
    n = sum(len(s.files) for s in pinned.sources)
    log.info("pinned %d files of %d sources into %s", n, len(pinned.sources), out or path)
    return pinned
