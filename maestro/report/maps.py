"""Image panels: MAE reconstructions and segmentation maps of test crops.

Display rules: RGB where the modality has the bands (``DISPLAY_BANDS``), else the first band
through a colour map with a colour bar in the modality's stored (scaled) units: ``terrain``
for elevation, ``gray`` for the rest. Masked patches are drawn in :data:`MASK_RGB`, a colour
no stretch of real data produces, so they never pass for data (a grey patch does in S1/DEM).
Class maps use the dataset's published legend colours when the predictions carry them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize, to_rgba

from maestro.report.figures import _save

#: Bands shown as RGB when present (first match wins), else the first band alone.
DISPLAY_BANDS = (("R", "G", "B"), ("B4", "B3", "B2"), ("NIR", "R", "G"))
#: Masked (or otherwise missing) pixels: magenta.
MASK_RGB = (1.0, 0.0, 1.0)
#: Single-band modalities with a colour map of their own (by modality name).
BAND_CMAPS = {"dem": "terrain"}


def class_colours(k: int) -> list[tuple[float, float, float, float]]:
    """``k`` distinct colours: tab20's saturated half first, then its light half (tab20
    pairs a dark and a light shade of one hue: neighbouring class ids would look alike)."""
    cmap = plt.get_cmap("tab20")
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [cmap(order[c % 20]) for c in range(k)]


def display_scale(
    bands: list[str], ref: np.ndarray, modality: str = ""
) -> tuple[list[int], float, float, str | None]:
    """How ``(C, H, W)`` images like ``ref`` are shown: band indices, value range, and the
    colour map of a single-band display (None for RGB). RGB and grey displays stretch
    ``ref``'s 2-98 % range; elevation keeps its whole range (a DEM crop is smooth: clipping
    2 % at each end saturates whole slopes)."""
    pick = next((b for b in DISPLAY_BANDS if all(x in bands for x in b)), (bands[0],))
    idx = [bands.index(b) for b in pick]
    finite = ref[idx][np.isfinite(ref[idx])]
    cmap = None if len(idx) == 3 else BAND_CMAPS.get(modality, "gray")
    if not finite.size:
        return idx, 0.0, 1.0, cmap
    q = (0, 100) if cmap == "terrain" else (2, 98)
    lo, hi = np.percentile(finite, q)
    return idx, float(lo), float(max(hi, lo + 1e-6)), cmap


def _display(img: np.ndarray, bands: list[str], ref: np.ndarray, modality: str = "") -> np.ndarray:
    """``(C, H, W)`` -> an ``(H, W, 3)`` RGB image in [0, 1], masked (NaN) pixels in
    :data:`MASK_RGB`."""
    idx, lo, hi, cmap = display_scale(bands, ref, modality)
    x = np.clip((img[idx] - lo) / (hi - lo), 0, 1)
    nan = np.isnan(x).any(0)
    if cmap is None:
        rgb = np.moveaxis(np.nan_to_num(x), 0, -1)
    else:
        rgb = plt.get_cmap(cmap)(np.nan_to_num(x[0]))[..., :3]
    rgb[nan] = MASK_RGB
    return rgb


def reconstruction_figure(npz_path: str | Path, out: str | Path, title: str = "") -> None:
    """Rows = modalities (first date), columns = masked input / reconstruction / target;
    single-band rows get a colour bar (stored units, the target's range)."""
    data = np.load(npz_path, allow_pickle=False)
    mods = sorted(
        {k.split("__")[0] for k in data.files}, key=lambda m: data.files.index(f"{m}__target")
    )
    fig, axes = plt.subplots(len(mods), 3, figsize=(8.2, 2.5 * len(mods)), squeeze=False)
    for row, m in zip(axes, mods, strict=True):
        bands = [str(b) for b in data[f"{m}__bands"]]
        target = data[f"{m}__target"][0]
        for ax, key, name in zip(
            row,
            ("masked_input", "reconstruction", "target"),
            ("masked input", "reconstruction", "target"),
            strict=True,
        ):
            ax.imshow(_display(data[f"{m}__{key}"][0], bands, target, m), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{m}: {name}", fontsize=8)
        idx, lo, hi, cmap = display_scale(bands, target, m)
        if cmap is not None:
            bar = fig.colorbar(
                ScalarMappable(Normalize(lo, hi), cmap), ax=row[-1], fraction=0.046, pad=0.04
            )
            bar.set_label(f"{bands[idx[0]]} (stored units)", fontsize=7)
            bar.ax.tick_params(labelsize=6)
    fig.text(0.5, 0.0, "magenta: masked patches", ha="center", fontsize=7, color="m")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, out)


def segmentation_maps(npz_path: str | Path, out: str | Path, title: str = "") -> None:
    """Rows = test crops; columns = input (reference modality, first date), label, prediction;
    classes in the dataset's legend colours (``colours`` in the file) or distinct tab20 ones."""
    data = np.load(npz_path, allow_pickle=False)
    classes = [str(c) for c in data["classes"]]
    bands = [str(b) for b in data["bands"]]
    if "colours" in data.files:
        colours = [to_rgba(str(c)) for c in data["colours"]]
    else:
        colours = class_colours(len(classes))
    cmap = ListedColormap(colours)
    n = len(data["label"])
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for row, k in zip(axes, range(n), strict=True):
        img = data["image"][k]
        row[0].imshow(_display(img, bands, img))
        for ax, key in zip(row[1:], ("label", "prediction"), strict=True):
            m = np.ma.masked_less(data[key][k], 0)  # ignored pixels stay blank
            ax.imshow(m, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, interpolation="nearest")
        for ax, name in zip(row, ("input", "label", "prediction"), strict=True):
            ax.set_title(f"crop {k}: {name}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    present = sorted(set(np.unique(data["label"])) | set(np.unique(data["prediction"])) - {-1})
    handles = [
        plt.Rectangle((0, 0), 1, 1, facecolor=cmap(c), edgecolor="0.5") for c in present if c >= 0
    ]
    fig.legend(
        handles,
        [classes[c] for c in present if c >= 0],
        loc="lower center",
        ncol=4,
        fontsize=7,
        frameon=False,
    )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(bottom=0.12)
    _save(fig, out)
