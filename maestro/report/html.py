"""Self-contained HTML pages of the Markdown tables, for the Snakemake report.

The report embeds HTML files and shows them inline, while a ``.md`` file is only offered as a
download. The tables are written in a small Markdown subset (headings, paragraphs, bullet
lists, pipe tables, ``**bold**`` and ```code```), so a converter for that subset is enough and
keeps the page dependency-free and offline (no script, no external stylesheet).
"""

from __future__ import annotations

import html
import os
import re

from maestro.utils.atomic import write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
th { background: #eee; } td:not(:first-child) { text-align: center; }
tr:nth-child(even) td { background: #fafafa; } code { background: #f2f2f2; }
"""


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    head, body = _cells(lines[0]), [_cells(r) for r in lines[2:]]
    rows = ["<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    rows += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*", line.strip()))


def _block(lines: list[str]) -> str:
    first = lines[0]
    if first.startswith("#"):
        level = min(len(first) - len(first.lstrip("#")), 6)
        head = f"<h{level}>{_inline(first.lstrip('#').strip())}</h{level}>"
        return head + ("\n" + _block(lines[1:]) if len(lines) > 1 else "")
    if first.startswith("|") and len(lines) > 1 and _is_separator(lines[1]):
        return _table(lines)
    if all(line.startswith(("- ", "* ")) for line in lines):
        return "<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>"
    return "<p>" + _inline(" ".join(line.strip() for line in lines)) + "</p>"


def markdown_to_html(md: str, title: str = "") -> str:
    """A standalone HTML page of ``md`` (the subset the tables use); ``title`` names the page
    (default: its first heading)."""
    blocks, cur = [], []
    for line in md.splitlines():
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    if not title:
        title = next((b[0].lstrip("#").strip() for b in blocks if b[0].startswith("#")), "table")
    body = "\n".join(_block(b) for b in blocks)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_markdown(path: str | os.PathLike[str], md: str) -> None:
    """Atomically write ``md`` to ``path`` (``.md``) and its HTML page beside it (``.html``)."""
    path = os.fspath(path)
    write_text(path, md)
    write_text(os.path.splitext(path)[0] + ".html", markdown_to_html(md))
