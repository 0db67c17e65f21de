"""Text rendering of an audit report (:mod:`maestro.provenance.audit`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from maestro.provenance.audit import Link, Report

HEX = re.compile(r"[0-9a-f]{20,}(\.dir)?")
MARK = {True: "ok  ", False: "FAIL", None: "--  "}


def _short(value: Any, n: int = 12) -> str:
    """A hash cut to ``n`` characters; anything else unchanged."""
    text = str(value)
    return text[:n] + "…" if HEX.fullmatch(text) and len(text) > n else text


def _describe(link: Link) -> str:
    i = link.info
    if link.kind == "metrics":
        run = f"{i.get('mode')} {i.get('dataset')} seed {i.get('seed')}"
        return f"{run}: test {i.get('metric')} {i.get('test')}"
    if link.kind == "store":
        return f"content hash {_short(i.get('content_hash'))}"
    if "config_hash" in i:
        git = i.get("git") or {}
        state = "dirty" if git.get("dirty") else "clean"
        phase = ", ".join(f"{k} {v}" for k, v in (i.get("phase") or {}).items())
        return (
            f"sha256 {_short(i.get('sha256'))}  config {_short(i.get('config_hash'))} ({phase})  "
            f"seed {i.get('seed')}  git {str(git.get('sha'))[:10]} ({state})  "
            f"{i.get('device')}  {i.get('finished_at')}"
        )
    return "  ".join(f"{k} {_short(v)}" for k, v in i.items() if v is not None)


def render(report: Report, root: str | os.PathLike[str] = ".") -> str:
    """The readable report: one block per link, one line per check."""
    base = Path(root).resolve()

    def rel(p: str | None) -> str:
        try:
            return Path(p or "").resolve().relative_to(base).as_posix()
        except ValueError:
            return p or ""

    def where(path: str | None, link: Link) -> str:
        """A check's file, when it is not the link's (relative to the link's folder)."""
        if path is None or Path(path) in (Path(link.path), Path(link.path).parent):
            return ""
        inside = Path(path).is_relative_to(Path(link.path).parent)
        return f" [{Path(path).relative_to(Path(link.path).parent) if inside else rel(path)}]"

    def block(link: Link) -> list[str]:
        lines = [f"  {link.kind:<12}{rel(link.path)}", f"  {'':<12}{_describe(link)}"]
        for c in link.checks:
            text = c.what + where(c.path, link)
            if c.recorded or c.found:
                short = c.ok is not False
                text += f": recorded {_short(c.recorded) if short else c.recorded}"
                text += f", found {_short(c.found) if short else c.found}" if c.found else ""
            lines.append(f"      {MARK[c.ok]} {text}")
        return lines

    lines = [f"AUDIT {report.title}", ""]
    if report.table:
        lines += ["table", *block(report.table), ""]
    for chain in report.chains:
        lines += [f"seed {chain[0].info.get('seed')}", *[x for ln in chain for x in block(ln)], ""]
    if report.data:
        lines += ["data", *[x for ln in report.data for x in block(ln)], ""]
    checks = [c for ln in report.links() for c in ln.checks]
    n_ok = sum(c.ok is True for c in checks)
    n_none = sum(c.ok is None for c in checks)
    verdict = "FAILED" if report.failures else "PASSED"
    lines.append(
        f"{verdict}: {n_ok} checks ok, {len(report.failures)} failed, {n_none} not checkable"
    )
    return "\n".join(lines)


def failure_message(report: Report) -> str:
    """The loud summary of the failures (one line per file)."""
    n = len(report.failures)
    lines = [f"AUDIT FAILED: {n} check(s) failed (a recorded hash no longer matches, or a file "
             "is missing)"]  # fmt: skip
    for c in report.failures:
        detail = f": recorded {c.recorded}, found {c.found}" if c.recorded or c.found else ""
        lines.append(f"  {c.path}: {c.what}{detail}")
    return "\n".join(lines)
