"""The Hugging Face Hub over plain HTTP (standard library only).

Endpoints relied on (``{type}`` is ``datasets`` or ``models``, ``{t}/`` is ``datasets/`` for
datasets and empty for models; revisions are percent-encoded, paths keep their ``/``):

- ``GET {endpoint}/{t}/{repo}/resolve/{revision}/{path}``: file bytes. Large files redirect
  to a CDN host; ``Range: bytes=N-`` is honoured (206).
- ``GET {endpoint}/api/{type}/{repo}/revision/{revision}``: repository info at a revision;
  its ``sha`` field is the commit sha the revision resolves to.
- ``GET {endpoint}/api/{type}/{repo}/tree/{revision}/{folder}?recursive=true``: the files
  under a folder, as a JSON list of ``{type, path, size, oid, lfs?}``; for Git-LFS files
  ``lfs.oid`` is the file's sha256 and ``lfs.size`` its size, otherwise ``oid`` is the git
  blob sha1. Long listings are paginated with a ``Link: <url>; rel="next"`` header.

The token (``HF_TOKEN``) is sent as ``Authorization: Bearer`` to the endpoint's host only:
it is dropped when a redirect leaves that host.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from maestro.data.download.errors import (
    AuthError,
    DownloadError,
    NotFoundError,
    TransferError,
    TransientError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"
USER_AGENT = "maestro-bench-downloader/1"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per file or API call, and the exponential backoff between them."""

    attempts: int = 5
    backoff: float = 1.0  # seconds before the 2nd attempt, doubled each time
    max_backoff: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1, 2, ...)."""
        return min(self.max_backoff, self.backoff * 2 ** (failures - 1))


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects; drop the Authorization header when the host changes."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def is_transient(err: BaseException) -> bool:
    """Whether an error is worth another attempt (network trouble, 5xx, 429, cut bodies)."""
    if isinstance(err, urllib.error.HTTPError):
        return err.code in _RETRY_STATUS
    return isinstance(
        err, TransientError | urllib.error.URLError | http.client.HTTPException | OSError
    )


class HubClient:
    """URLs, authentication, error mapping and retries for one Hub endpoint."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        if urlsplit(self.endpoint).scheme not in ("http", "https"):
            raise ValueError(
                f"Hub endpoint (HF_ENDPOINT) must be an http(s) URL, found {self.endpoint!r}"
            )
        self.token = token if token is not None else (os.environ.get("HF_TOKEN") or None)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._opener = urllib.request.build_opener(_RedirectHandler())

    # --- URLs ----------------------------------------------------------------------------

    def file_url(self, repo_type: str, repo: str, revision: str, path: str) -> str:
        """The ``resolve`` URL of a repository file at a revision."""
        prefix = "datasets/" if repo_type == "dataset" else ""
        return (
            f"{self.endpoint}/{prefix}{repo}/resolve/{quote(revision, safe='')}/"
            f"{quote(path, safe='/')}"
        )

    def api_url(self, repo_type: str, repo: str, *parts: str) -> str:
        """``{endpoint}/api/{datasets|models}/{repo}/<parts...>``."""
        return "/".join([f"{self.endpoint}/api/{repo_type}s/{repo}", *parts])

    # --- requests ------------------------------------------------------------------------

    def open(self, url: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """Send a GET; a status >= 400 raises ``urllib.error.HTTPError`` (see ``raise_for``)."""
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
        if self.token and urlsplit(url).netloc == urlsplit(self.endpoint).netloc:
            req.add_header("Authorization", f"Bearer {self.token}")
        return self._opener.open(req, timeout=self.timeout)

    def raise_for(self, err: urllib.error.HTTPError, url: str, what: str) -> None:
        """Raise a clear error for a final status (404, 401/403, other 4xx); return for the
        statuses worth a retry (5xx, 408, 429)."""
        code = err.headers.get("X-Error-Code", "") if err.headers else ""
        detail = err.headers.get("X-Error-Message", "") if err.headers else ""
        said = " ".join(x for x in (code, detail) if x)
        extra = f" (server: {said})" if said else ""
        if err.code == 404:
            hint = "" if self.token else "; a private repository also answers 404 without HF_TOKEN"
            raise NotFoundError(
                f"not found (HTTP 404): {what} at {url}{extra}. Check the repository name, the "
                f"revision and the path in the manifest{hint}."
            ) from None
        if err.code in (401, 403):
            if self.token:
                why = (
                    f"the token in HF_TOKEN was refused (HTTP {err.code}): check that it is valid "
                    "and that your account accepted the dataset's access conditions"
                )
            else:
                why = (
                    f"authentication required (HTTP {err.code}) and HF_TOKEN is not set: create a "
                    "token at https://huggingface.co/settings/tokens and export HF_TOKEN"
                )
            raise AuthError(f"{what} at {url}: {why}{extra}.") from None
        if err.code not in _RETRY_STATUS:
            raise DownloadError(f"{what} at {url}: HTTP {err.code} {err.reason}{extra}") from None

    def retrying(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action`` with the retry policy; transient failures wait and try again."""
        failures = 0
        while True:
            try:
                return action()
            except Exception as err:
                if not is_transient(err):
                    raise
                failures += 1
                if failures >= self.retry.attempts:
                    raise TransferError(
                        f"{what}: giving up after {failures} attempts; last error: {err}"
                    ) from err
                wait = self.retry.delay(failures)
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %.1fs", what, failures, err, wait
                )
                self.sleep(wait)

    def get_bytes(self, url: str, what: str) -> tuple[bytes, http.client.HTTPMessage]:
        """GET a small body completely (with retries and error mapping)."""

        def attempt() -> tuple[bytes, http.client.HTTPMessage]:
            try:
                with self.open(url) as resp:
                    body = resp.read()
                    length = resp.headers.get("Content-Length")
                    if length is not None and len(body) < int(length):
                        raise TransientError(f"body cut at {len(body)} of {length} bytes")
                    return body, resp.headers
            except urllib.error.HTTPError as err:
                self.raise_for(err, url, what)
                raise

        return self.retrying(what, attempt)

    def get_json(self, url: str, what: str) -> tuple[Any, http.client.HTTPMessage]:
        """GET and decode a JSON document."""
        body, headers = self.get_bytes(url, what)
        try:
            return json.loads(body), headers
        except json.JSONDecodeError as err:
            raise TransferError(f"{what}: {url} did not return JSON ({err})") from err

    # --- Hub API -------------------------------------------------------------------------

    def resolve_revision(self, repo_type: str, repo: str, revision: str) -> str:
        """The commit sha a branch, tag or sha resolves to."""
        url = self.api_url(repo_type, repo, "revision", quote(revision, safe=""))
        info, _ = self.get_json(url, f"revision {revision!r} of {repo_type} {repo}")
        sha = info.get("sha") if isinstance(info, dict) else None
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise TransferError(
                f"{url}: expected a JSON object with a 40-hex 'sha', found {info!r}"
            )
        return sha

    def list_tree(
        self, repo_type: str, repo: str, revision: str, folder: str, recursive: bool
    ) -> Iterator[dict[str, Any]]:
        """The file entries (not folders) under ``folder``, following pagination."""
        parts = ["tree", quote(revision, safe="")] + ([quote(folder, safe="/")] if folder else [])
        url: str | None = self.api_url(repo_type, repo, *parts)
        if recursive:
            url = f"{url}?recursive=true"
        what = f"file list of {repo_type} {repo} at {revision}, folder {folder or '/'!r}"
        while url:
            page, headers = self.get_json(url, what)
            if not isinstance(page, list):
                raise TransferError(f"{what}: {url} returned {type(page).__name__}, not a list")
            yield from (e for e in page if isinstance(e, dict) and e.get("type") == "file")
            match = _NEXT_LINK.search(headers.get("Link", "") or "")
            url = match.group(1) if match else None
            if url and url.startswith("/"):
                url = self.endpoint + url
