"""Command-line entry points: ``download`` and ``pin-manifest``.

To be wired into ``maestro.cli`` (``add_*_arguments`` fill a subparser, ``*_cmd`` run it), or
run standalone: ``python -m maestro.data.download {download,pin-manifest} ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from maestro.data.download.errors import DownloadError
from maestro.data.download.fetch import download
from maestro.data.download.http import HubClient, RetryPolicy
from maestro.data.download.manifest import load_manifest
from maestro.data.download.pin import pin_manifest_file


def add_download_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``maestro download``."""
    p.add_argument("--manifest", required=True, help="config/manifests/<store>.yaml")
    p.add_argument("--out", required=True, help="dataset root, e.g. data/raw/treesatai_ts")
    p.add_argument(
        "--allow-unpinned",
        action="store_true",
        help=(
            "download files without a pinned sha256 (their hash is recorded, not checked: "
            "nothing can tell wrong bytes from right ones, including the bytes of an "
            "interrupted transfer that a rerun resumes; pin the manifest to verify)"
        ),
    )
    p.add_argument(
        "--rehash", action="store_true", help="re-hash files already present and verified"
    )
    p.add_argument(
        "--keep-archives", action="store_true", help="keep zip archives after extraction"
    )
    p.add_argument("--jobs", type=int, default=4, help="parallel transfers (default 4)")
    p.add_argument("--attempts", type=int, default=5, help="attempts per file (default 5)")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_pin_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``maestro pin-manifest``."""
    p.add_argument("--manifest", required=True, help="config/manifests/<store>.yaml")
    p.add_argument(
        "--out", default=None, help="where to write the pinned manifest (default: in place)"
    )
    p.add_argument(
        "--update",
        action="store_true",
        help="re-resolve the recorded branch (ref) and accept changed hashes",
    )
    p.add_argument("--attempts", type=int, default=5, help="attempts per API call (default 5)")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")


def _client(args: argparse.Namespace) -> HubClient:
    if args.attempts < 1:
        raise SystemExit(f"--attempts must be >= 1, got {args.attempts}")
    return HubClient(timeout=args.timeout, retry=RetryPolicy(attempts=args.attempts))


def download_cmd(args: argparse.Namespace) -> None:
    """Run ``maestro download``; a download failure exits with its message."""
    try:
        download(
            load_manifest(args.manifest),
            args.out,
            client=_client(args),
            allow_unpinned=args.allow_unpinned,
            rehash=args.rehash,
            keep_archives=args.keep_archives,
            jobs=args.jobs,
            progress=False if args.no_progress else None,
        )
    except DownloadError as err:
        raise SystemExit(str(err)) from err


def pin_cmd(args: argparse.Namespace) -> None:
    """Run ``maestro pin-manifest``; a failure exits with its message."""
    try:
        pin_manifest_file(args.manifest, args.out, client=_client(args), update=args.update)
    except DownloadError as err:
        raise SystemExit(str(err)) from err


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m maestro.data.download``)."""
    parser = argparse.ArgumentParser(prog="python -m maestro.data.download", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("download", help="download and verify a dataset from its manifest")
    add_download_arguments(sp)
    sp.set_defaults(func=download_cmd)
    sp = sub.add_parser("pin-manifest", help="pin a manifest's revisions, files and hashes")
    add_pin_arguments(sp)
    sp.set_defaults(func=pin_cmd)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.func(args)
    except ValueError as err:  # ManifestError
        print(f"{args.command}: {err}", file=sys.stderr)
        return 2
    except SystemExit as err:  # a DownloadError, reported by the subcommand
        if not isinstance(err.code, str):
            raise
        print(f"{args.command}: {err.code}", file=sys.stderr)
        return 2
    return 0
