"""Resumable, verified downloads of the benchmark datasets from Hugging Face.

- :mod:`.manifest`: the per-store manifests (``config/manifests/*.yaml``) as data;
- :mod:`.pin`: resolve branches and fill sha256/size from the Hub API;
- :mod:`.fetch`: ``download(manifest, root)``: skip verified files, fetch, verify, extract,
  record ``download_manifest.json``;
- :mod:`.transfer`: one resumable transfer (``.part``, ``Range``, retries, ``.corrupt``);
- :mod:`.extract`: atomic zip extraction;
- :mod:`.http`: the Hub endpoints used, token handling, error mapping;
- :mod:`.cli`: ``download`` / ``pin-manifest`` entry points.

See ``docs/downloads.md``.
"""

from maestro.data.download.errors import (
    AuthError,
    ChecksumError,
    DiskFullError,
    DownloadError,
    ExtractError,
    ManifestError,
    NotFoundError,
    TransferError,
    UnpinnedError,
)
from maestro.data.download.fetch import RECORD, DownloadReport, download
from maestro.data.download.http import HubClient, RetryPolicy
from maestro.data.download.manifest import FileEntry, IncludeRule, Manifest, Source, load_manifest
from maestro.data.download.pin import pin, pin_manifest_file

__all__ = [
    "RECORD",
    "AuthError",
    "ChecksumError",
    "DiskFullError",
    "DownloadError",
    "DownloadReport",
    "ExtractError",
    "FileEntry",
    "HubClient",
    "IncludeRule",
    "Manifest",
    "ManifestError",
    "NotFoundError",
    "RetryPolicy",
    "Source",
    "TransferError",
    "UnpinnedError",
    "download",
    "load_manifest",
    "pin",
    "pin_manifest_file",
]
