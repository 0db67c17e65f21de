"""``download``: make a dataset root match its manifest, verifying every byte.

State under ``<root>/.download/`` (never read by the readers):

- ``verified/<target>.json``: sidecar of a verified file (sha256, size, mtime): a rerun skips
  the file without re-hashing it while size and mtime are unchanged (``rehash=True`` re-hashes);
- ``archives/<target>.zip``: zip archives while they are downloaded and extracted (removed
  after extraction unless ``keep_archives``);
- ``extracted/<target>.json``: completion marker of an extracted archive (its sha256).

``<root>/download_manifest.json`` records, per target, the URL, repository, revision, path,
size, sha256, time and how the hash was verified: ``pinned`` (the manifest's sha256), ``api``
(an include glob expanded at download time: the Hub's LFS sha256) or ``tofu`` (unpinned,
trust on first use: the hash was computed and recorded, not checked). It is written only when
every file is verified (the workflow's download rule declares it as its output); a failed run
writes ``download_manifest.partial.json`` with the files it verified.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from maestro.data.download.errors import Cancelled, UnpinnedError
from maestro.data.download.extract import extract_zip
from maestro.data.download.http import HubClient
from maestro.data.download.manifest import (
    STATE_DIR,
    FileEntry,
    Manifest,
    Source,
    check_targets,
    is_commit,
    load_manifest,
)
from maestro.data.download.pin import expand_rules
from maestro.data.download.transfer import fetch, sha256_file
from maestro.utils.atomic import write_json

log = logging.getLogger(__name__)
RECORD = "download_manifest.json"
#: What a failed or interrupted run verified so far (the record is written only on success:
#: it is the workflow's output, and its presence means "downloaded").
PARTIAL_RECORD = "download_manifest.partial.json"


@dataclass(frozen=True)
class Planned:
    """A file to bring into the root, and where its expected hash comes from."""

    source: Source
    entry: FileEntry
    check: str  # "pinned" | "api" | "tofu"


@dataclass
class DownloadReport:
    """What a ``download`` call did."""

    record: Path
    downloaded: list[str] = field(default_factory=list)  # downloaded (or extracted) now
    kept: list[str] = field(default_factory=list)  # already present and verified
    bytes: int = 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def plan(manifest: Manifest, client: HubClient, *, allow_unpinned: bool = False) -> list[Planned]:
    """Every file of the manifest; unpinned files are refused unless ``allow_unpinned``."""
    missing = manifest.unpinned()
    if missing and not allow_unpinned:
        shown = "; ".join(missing[:5]) + (
            f"; ... ({len(missing)} in all)" if len(missing) > 5 else ""
        )
        raise UnpinnedError(
            f"{manifest.origin}: not pinned (no sha256): {shown}. Run `maestro pin-manifest "
            f"--manifest {manifest.origin}` where the Hub is reachable to pin them, or pass "
            "--allow-unpinned (allow_unpinned=True) to download them unverified and record the "
            "hash computed (trust on first use)."
        )
    out: list[Planned] = []
    for s in manifest.sources:
        if not is_commit(s.revision):
            log.warning(
                "%s: revision %r is a branch: files are checked against their hashes but the "
                "branch may move; pin the manifest to record a commit",
                s.repo,
                s.revision,
            )
        # include-generated entries of an earlier expansion are stale once the revision moved
        files = [f for f in s.files if not (s.include_pending and f.from_include)]
        if s.include_pending:
            known = {f.path for f in files}
            files += [f for f in expand_rules(client, s, s.revision) if f.path not in known]
        for f in files:
            if f.sha256 is None:
                check = "tofu"
            elif s.include_pending and f.from_include:
                check = "api"
            else:
                check = "pinned"
            out.append(Planned(s, f, check))
    check_targets(((p.source.repo, p.entry) for p in out), manifest.origin)
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class _Run:
    """Shared state of one ``download`` call."""

    def __init__(
        self,
        root: Path,
        client: HubClient,
        *,
        rehash: bool,
        keep_archives: bool,
        progress: Callable[[int], None],
        cancel: threading.Event,
    ) -> None:
        self.root, self.client, self.rehash = root, client, rehash
        self.keep_archives, self.progress, self.cancel = keep_archives, progress, cancel
        self.state = root / STATE_DIR

    def sidecar(self, path: Path) -> Path:
        """The verification record of a file under the root."""
        return self.state / "verified" / f"{path.relative_to(self.root).as_posix()}.json"

    def _write_sidecar(self, path: Path, sha256: str, p: Planned) -> None:
        st = path.stat()
        data = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "time": _now()}
        write_json(self.sidecar(path), {**data, "check": p.check})

    def _trusted(self, path: Path, expected: str | None) -> dict[str, Any] | None:
        """The sidecar of ``path`` if it still describes the file (no hashing)."""
        state = _read_json(self.sidecar(path))
        if state is None or not path.is_file():
            return None
        st = path.stat()
        if (state.get("size"), state.get("mtime_ns")) != (st.st_size, st.st_mtime_ns):
            return None
        return state if expected in (None, state.get("sha256")) else None

    def _present(self, path: Path, p: Planned) -> str | None:
        """The sha256 of an existing file that matches what the manifest wants, else None."""
        expected = p.entry.sha256
        state = self._trusted(path, expected)
        if state is not None and not self.rehash:
            return str(state["sha256"])
        if not path.is_file():
            return None
        want = expected or (state or {}).get("sha256")
        if want is None:
            return None  # unpinned and never verified: download it again
        found = sha256_file(path)
        size_ok = p.entry.size in (None, path.stat().st_size)
        if found == want and size_ok:
            self._write_sidecar(path, found, p)
            return found
        log.warning(
            "%s exists but its sha256 is %s, not %s: downloading it again", path, found, want
        )
        return None

    def _get(self, path: Path, p: Planned, url: str) -> tuple[str, int | None]:
        """Download (or keep) ``path``: its sha256 and the bytes transferred (None: kept)."""
        found = self._present(path, p)
        if found is not None:
            self.progress(path.stat().st_size)
            return found, None
        e, s = p.entry, p.source
        res = fetch(
            self.client,
            url,
            path,
            sha256=e.sha256,
            size=e.size,
            progress=self.progress,
            cancel=self.cancel,
            what=f"{s.repo_type} {s.repo}, revision {s.revision}, path {e.path}",
        )
        self._write_sidecar(path, res.sha256, p)
        return res.sha256, res.size - res.resumed_from

    def process(self, p: Planned) -> dict[str, Any]:
        """Bring one planned file (or archive) into place; return its record entry."""
        if self.cancel.is_set():
            raise Cancelled(f"{p.entry.path}: not started")
        s, e = p.source, p.entry
        url = self.client.file_url(s.repo_type, s.repo, s.revision, e.path)
        rec: dict[str, Any] = {
            "url": url, "repo": s.repo, "repo_type": s.repo_type, "revision": s.revision,
            "path": e.path, "target": e.dest, "check": p.check, "pinned": p.check == "pinned",
        }  # fmt: skip
        if e.extract:
            rec.update(self._archive(p, url))
        else:
            path = self.root / e.dest
            rec["sha256"], fetched = self._get(path, p, url)
            rec["size"] = path.stat().st_size
            rec["time"] = (_read_json(self.sidecar(path)) or {}).get("time", _now())
            rec["action"] = "kept" if fetched is None else "downloaded"
            rec["downloaded_bytes"] = fetched or 0
        return rec

    def _archive(self, p: Planned, url: str) -> dict[str, Any]:
        e = p.entry
        folder = self.root / e.dest
        marker = self.state / "extracted" / f"{e.dest}.json"
        done = _read_json(marker)
        archive = self.state / "archives" / f"{e.dest}.zip"
        if (
            done is not None
            and folder.is_dir()
            and e.sha256 in (None, done.get("sha256"))
            and not (self.rehash and archive.is_file() and self._present(archive, p) is None)
        ):
            self.progress(int(done.get("size", 0)))
            kept = {k: done[k] for k in ("sha256", "size", "time", "extracted") if k in done}
            return {**kept, "action": "kept", "downloaded_bytes": 0}
        sha256, fetched = self._get(archive, p, url)
        info = extract_zip(archive, folder, flatten=e.flatten)
        extracted = {"files": info.files, "bytes": info.bytes, "stripped": info.stripped}
        done = {"sha256": sha256, "size": archive.stat().st_size, "time": _now(), "url": url}
        write_json(marker, {**done, "extracted": extracted})
        if not self.keep_archives:
            archive.unlink()
            self.sidecar(archive).unlink(missing_ok=True)
        log.info("%s: %d files extracted into %s", e.path, info.files, folder)
        action = "extracted" if fetched is None else "downloaded"
        return {**done, "extracted": extracted, "action": action, "downloaded_bytes": fetched or 0}


def _write_record(
    root: Path, manifest: Manifest, client: HubClient, entries: list[dict], name: str = RECORD
) -> Path:
    """Write the record ``name`` with the files of earlier runs (complete or not) updated by
    ``entries``."""
    path = root / name
    files: dict[str, Any] = {}
    for earlier in (RECORD, PARTIAL_RECORD):
        old = (_read_json(root / earlier) or {}).get("files")
        files.update(old if isinstance(old, dict) else {})
    files.update({rec["target"]: rec for rec in entries})
    record = {
        "manifest": {"name": manifest.name, "file": manifest.origin},
        "endpoint": client.endpoint,
        "updated": _now(),
        "files": dict(sorted(files.items())),
    }
    write_json(path, record)
    return path


def download(
    manifest: Manifest | str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    client: HubClient | None = None,
    allow_unpinned: bool = False,
    rehash: bool = False,
    keep_archives: bool = False,
    jobs: int = 1,
    progress: bool | None = None,
) -> DownloadReport:
    """Download and verify every file of ``manifest`` (or the manifest file at that path)
    into ``root`` (module docstring).

    ``client`` defaults to ``HubClient()`` (``HF_ENDPOINT``, ``HF_TOKEN``); ``jobs`` files are
    transferred in parallel; ``progress`` shows a tqdm bar (default: when stderr is a terminal).
    The record (:data:`RECORD`) is written only when every file is verified; a failed or
    interrupted run writes what it verified to :data:`PARTIAL_RECORD` instead.
    """
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    client = client or HubClient()
    root = Path(root)
    planned = plan(manifest, client, allow_unpinned=allow_unpinned)
    root.mkdir(parents=True, exist_ok=True)
    total = sum(p.entry.size or 0 for p in planned)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total or None, unit="B", unit_scale=True, disable=not show, desc=manifest.name)
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    cancel = threading.Event()
    run = _Run(
        root, client, rehash=rehash, keep_archives=keep_archives, progress=advance, cancel=cancel
    )
    entries: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    complete = False
    try:
        if jobs <= 1:
            for p in planned:
                entries.append(run.process(p))
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(run.process, p) for p in planned]
                try:
                    for fut in as_completed(futures):
                        try:
                            entries.append(fut.result())
                        except Cancelled:
                            continue
                        except Exception as err:
                            errors.append(err)
                            cancel.set()
                except KeyboardInterrupt:
                    cancel.set()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        complete = not errors and len(entries) == len(planned)
    finally:
        bar.close()
        if complete:
            record = _write_record(root, manifest, client, entries)
            (root / PARTIAL_RECORD).unlink(missing_ok=True)
        else:
            partial = _write_record(root, manifest, client, entries, PARTIAL_RECORD)
            log.error("download incomplete: %d of %d files verified (%s)", len(entries),
                      len(planned), partial)  # fmt: skip
    for extra in errors[1:]:
        log.error("also failed: %s", extra)
    if errors:
        raise errors[0]
    report = DownloadReport(record)
    for rec in entries:
        (report.kept if rec["action"] == "kept" else report.downloaded).append(rec["target"])
        report.bytes += rec["downloaded_bytes"]
    log.info(
        "%s: %d files downloaded (%d bytes), %d already verified; record in %s",
        manifest.name, len(report.downloaded), report.bytes, len(report.kept), record,
    )  # fmt: skip
    return report
