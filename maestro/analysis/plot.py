"""Heatmaps of band correlations with the found groups drawn as boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from maestro.utils.atomic import atomic_path


def correlation_figure(result: dict[str, Any], out_png: str | Path) -> None:
    """One heatmap of ``|r|`` per modality; found groups boxed in black, spec groups dashed."""
    mods = result["modalities"]
    fig, axes = plt.subplots(1, len(mods), figsize=(3.6 * len(mods), 3.8), squeeze=False)
    for ax, (name, d) in zip(axes[0], mods.items(), strict=True):
        bands = d["bands"]
        corr = np.abs(np.asarray(d["correlation"]))
        im = ax.imshow(corr, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(bands)), bands, rotation=90, fontsize=7)
        ax.set_yticks(range(len(bands)), bands, fontsize=7)
        for groups, style in ((d["groups"], "-"), (d["spec_groups"], "--")):
            for g in groups:
                pos = sorted(bands.index(b) for b in g)
                if pos == list(range(pos[0], pos[-1] + 1)):  # contiguous: draw a box
                    w = len(pos)
                    color = "black" if style == "-" else "white"
                    ax.add_patch(
                        Rectangle(
                            (pos[0] - 0.5, pos[0] - 0.5),
                            w,
                            w,
                            fill=False,
                            ec=color,
                            ls=style,
                            lw=1.6,
                        )
                    )
        verdict = "= spec" if d["matches_spec"] else "!= spec"
        ax.set_title(f"{result['store']} / {name}\n{len(d['groups'])} groups {verdict}", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="|Pearson r|")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
