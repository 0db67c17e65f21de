"""Draw Snakemake's ``--rulegraph dot`` output as a PNG without Graphviz.

Rules are placed in layers by their longest path from a source rule, left to right.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from maestro.utils.atomic import atomic_path

_NODE = re.compile(r'^\s*(\d+)\[label = "([^"]+)"', re.M)
_EDGE = re.compile(r"^\s*(\d+) -> (\d+)", re.M)


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Node labels and edges of a Snakemake rule graph in dot format."""
    nodes = dict(_NODE.findall(text))
    edges = _EDGE.findall(text)
    if not nodes:
        raise ValueError("no rule found in the dot text (was it `snakemake --rulegraph dot`?)")
    return nodes, edges


def layers(nodes: dict[str, str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth of every node from the sources."""
    depth = {n: 0 for n in nodes}
    for _ in nodes:  # relax |V| times (the rule graph is a DAG)
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    return depth


def _barycentre(n: str, edges: list[tuple[str, str]], rank: dict[str, int]) -> float:
    near = [rank[a] for a, b in edges if b == n] + [rank[b] for a, b in edges if a == n]
    return sum(near) / len(near) if near else float(rank[n])


def draw_rulegraph(dot_text: str, out_png: str | Path, hide: tuple[str, ...] = ("all",)) -> None:
    """Render the rule graph to ``out_png``, leaving out aggregate targets named in ``hide``."""
    nodes, edges = parse_dot(dot_text)
    nodes = {k: v for k, v in nodes.items() if v not in hide}
    edges = [(a, b) for a, b in edges if a in nodes and b in nodes]
    depth = layers(nodes, edges)
    columns: dict[int, list[str]] = {}
    for n in sorted(nodes, key=lambda n: (depth[n], nodes[n])):
        columns.setdefault(depth[n], []).append(n)
    for _ in range(4):  # barycentre sweeps: order each layer by its neighbours' mean rank
        rank = {n: i for col in columns.values() for i, n in enumerate(col)}
        for x, col in columns.items():
            columns[x] = sorted(col, key=lambda n, r=rank: _barycentre(n, edges, r))
    pos = {}
    for x, col in columns.items():
        for i, n in enumerate(col):
            pos[n] = (x * 3.2, -(i - (len(col) - 1) / 2) * 1.1)
    fig, ax = plt.subplots(
        figsize=(3.0 * len(columns), 1.0 + 1.0 * max(map(len, columns.values())))
    )
    for a, b in edges:
        skip = depth[b] - depth[a] > 1  # long edges bend around the boxes in between
        ax.add_patch(
            FancyArrowPatch(
                (pos[a][0] + 1.2, pos[a][1]),
                (pos[b][0] - 1.2, pos[b][1]),
                arrowstyle="-|>",
                mutation_scale=12,
                color="grey",
                lw=1.0,
                connectionstyle=f"arc3,rad={-0.25 if skip else 0.0}",
            )
        )
    for n, (x, y) in pos.items():
        ax.add_patch(
            FancyBboxPatch(
                (x - 1.2, y - 0.3), 2.4, 0.6, boxstyle="round,pad=0.05", fc="#dbe9f6", ec="#3b6ea5"
            )
        )
        ax.text(x, y, nodes[n], ha="center", va="center", fontsize=9)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.5, max(xs) + 1.5)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
