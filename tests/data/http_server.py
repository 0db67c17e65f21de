"""A fake Hugging Face Hub on 127.0.0.1 for the downloader tests.

It serves ``resolve`` URLs with ``Range`` support, the ``revision`` and ``tree`` API endpoints
(paginated), and an optional second "CDN" server that LFS files redirect to. Faults can be
injected per repository path: cut the connection after N bytes, ignore ``Range``, serve other
bytes, or answer an HTTP status, each for a given number of requests. Every request is logged.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from maestro.data.download.http import HubClient, RetryPolicy


@pytest.fixture(autouse=True)
def local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, no endpoint and no proxy from the caller's environment (autouse in every
    test module that imports it)."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def client_for(hub: FakeHub, sleeps: list[float] | None = None) -> HubClient:
    """A client of ``hub``: 3 attempts, backoff 0.5 s doubling, sleeps recorded, not slept."""
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return HubClient(hub.url, timeout=5, retry=RetryPolicy(attempts=3, backoff=0.5), sleep=record)


def sha(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Fault:
    """Misbehaviour for the next ``times`` requests of one path."""

    times: int = 1
    cut_after: int | None = None  # send this many body bytes, then drop the connection
    ignore_range: bool = False  # answer 200 with the whole file to a Range request
    body: bytes | None = None  # serve these bytes instead of the file
    status: int | None = None  # answer this status with an empty body


@dataclass
class Request:
    """One request as the server saw it."""

    server: str  # "hub" or "cdn"
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Repo:
    """A repository at one commit."""

    sha: str
    files: dict[str, bytes]
    lfs: set[str]
    branches: set[str] = field(default_factory=set)


class FakeHub:
    """The fake Hub; use as a context manager. ``url`` is its endpoint."""

    def __init__(self, *, token: str | None = None, page_size: int = 1000, cdn: bool = False):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.faults: dict[str, Fault] = {}
        self.requests: list[Request] = []
        self.token = token
        self.page_size = page_size
        self._lock = threading.Lock()
        self._hub = self._server("hub")
        self._cdn = self._server("cdn") if cdn else None

    def _server(self, role: str) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        server.role = role  # type: ignore[attr-defined]
        return server

    @property
    def url(self) -> str:
        """The endpoint (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    def add_repo(
        self,
        repo: str,
        files: dict[str, bytes],
        *,
        repo_type: str = "dataset",
        lfs: set[str] | None = None,
        branch: str = "main",
    ) -> str:
        """Publish a repository; return its commit sha. ``lfs``: paths stored in LFS (all)."""
        digest = hashlib.sha1(repo.encode(), usedforsecurity=False)
        for path in sorted(files):
            digest.update(path.encode() + files[path])
        sha = digest.hexdigest()
        self.repos[(repo_type, repo)] = Repo(
            sha, dict(files), set(files if lfs is None else lfs), {branch}
        )
        return sha

    def requests_for(self, suffix: str) -> list[Request]:
        """Logged requests whose path ends with ``suffix``."""
        return [r for r in self.requests if r.path.endswith(suffix)]

    def __enter__(self) -> FakeHub:
        for server in (self._hub, self._cdn):
            if server is not None:
                threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self._hub, self._cdn):
            if server is not None:
                server.shutdown()
                server.server_close()

    # --- helpers for the handler ----------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            fault = self.faults.get(path)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault

    def find(self, repo_type: str, repo: str, revision: str) -> Repo | None:
        r = self.repos.get((repo_type, repo))
        if r is None or (revision != r.sha and revision not in r.branches):
            return None
        return r

    def cdn_url(self, key: str) -> str:
        assert self._cdn is not None
        return f"http://127.0.0.1:{self._cdn.server_address[1]}/cdn/{key}"

    def tree(self, r: Repo, folder: str, recursive: bool) -> Iterator[dict]:
        prefix = f"{folder}/" if folder else ""
        dirs: set[str] = set()
        for path in sorted(r.files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                dirs.add(prefix + rest.split("/")[0])
                continue
            data = r.files[path]
            if path in r.lfs:
                pointer = f"oid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n"
                entry = {
                    "type": "file",
                    "path": path,
                    "size": len(data),
                    "oid": _blob(pointer.encode()),
                }
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": len(pointer),
                }
            else:
                entry = {"type": "file", "path": path, "size": len(data), "oid": _blob(data)}
            yield entry
        for d in sorted(dirs):
            yield {"type": "directory", "path": d, "size": 0, "oid": "0" * 40}


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        role = self.server.role  # type: ignore[attr-defined]
        with self.hub._lock:
            self.hub.requests.append(Request(role, path, parse_qs(split.query), headers))
        if role == "cdn":
            key = path.removeprefix("/cdn/")
            repo_type, repo, _sha, file_path = json.loads(bytes.fromhex(key))
            return self._serve(self.hub.repos[(repo_type, repo)].files[file_path], file_path)
        if self.hub.token is not None:
            auth = headers.get("authorization")
            if auth is None:
                return self._reply(401, headers={"X-Error-Code": "GatedRepo"})
            if auth != f"Bearer {self.hub.token}":
                return self._reply(403, headers={"X-Error-Message": "Invalid credentials"})
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            return self._api(parts[1:], split.query)
        repo_type = "dataset" if parts[0] == "datasets" else "model"
        parts = parts[1:] if parts[0] == "datasets" else parts
        if len(parts) < 5 or parts[2] != "resolve":
            return self._reply(404)
        repo, revision, file_path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        r = self.hub.find(repo_type, repo, revision)
        if r is None or file_path not in r.files:
            code = "RepoNotFound" if r is None else "EntryNotFound"
            return self._reply(404, headers={"X-Error-Code": code})
        if self.hub._cdn is not None and file_path in r.lfs:
            key = json.dumps([repo_type, repo, r.sha, file_path]).encode().hex()
            return self._reply(302, headers={"Location": self.hub.cdn_url(key)})
        return self._serve(r.files[file_path], file_path)

    def _api(self, parts: list[str], query: str) -> None:
        repo_type = {"datasets": "dataset", "models": "model"}.get(parts[0])
        if repo_type is None or len(parts) < 5:
            return self._reply(404)
        repo, kind, revision, rest = "/".join(parts[1:3]), parts[3], parts[4], "/".join(parts[5:])
        r = self.hub.find(repo_type, repo, revision)
        if r is None:
            return self._reply(404, headers={"X-Error-Code": "RevisionNotFound"})
        if kind == "revision":
            return self._reply(200, json.dumps({"id": repo, "sha": r.sha}).encode())
        if kind != "tree":
            return self._reply(404)
        params = parse_qs(query)
        entries = list(self.hub.tree(r, rest, params.get("recursive") == ["true"]))
        start = int(params.get("cursor", ["0"])[0])
        page = entries[start : start + self.hub.page_size]
        headers = {"Content-Type": "application/json"}
        if start + self.hub.page_size < len(entries):
            nxt = f"{self.path.split('?')[0]}?recursive={params.get('recursive', ['false'])[0]}"
            headers["Link"] = f'<{nxt}&cursor={start + self.hub.page_size}>; rel="next"'
        return self._reply(200, json.dumps(page).encode(), headers)

    def _serve(self, data: bytes, file_path: str) -> None:
        fault = self.hub.take_fault(file_path)
        if fault is not None and fault.status is not None:
            return self._reply(fault.status)
        if fault is not None and fault.body is not None:
            data = fault.body
        start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
        rng = self.headers.get("Range")
        if rng and not (fault is not None and fault.ignore_range):
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return self._reply(416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if fault is None or fault.cut_after is None:
            return self._reply(status, body, headers)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: fault.cut_after])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True
