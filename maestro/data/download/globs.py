"""Globs over repository paths: ``*`` and ``?`` stay inside one path component, ``**`` spans
components, ``[...]`` is a character class (``[!...]`` negated)."""

from __future__ import annotations

import re


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a repository-path glob (``*``, ``?``, ``**``, ``[...]``) to an anchored regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def glob_base(pattern: str) -> tuple[str, bool]:
    """The folder to list for ``pattern`` and whether the listing must be recursive."""
    first = min((pattern.index(c) for c in "*?[" if c in pattern), default=len(pattern))
    base = pattern[:first].rpartition("/")[0]
    rest = pattern[len(base) + 1 if base else 0 :]
    return base, ("/" in rest or "**" in rest)
