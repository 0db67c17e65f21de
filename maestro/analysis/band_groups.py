"""Band correlations over a store's train split and their clustering into groups.

For each modality, the Pearson correlation of its model bands is accumulated over every valid
pixel of every date of the train split (streaming: one sample in memory at a time), then bands
are clustered hierarchically (average linkage on the distance ``1 - |r|``) and the tree is cut
at ``threshold``: bands whose average absolute correlation exceeds ``1 - threshold`` end up
together. The groups are compared with the declared normalization groups (upstream's
``norm_bands``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from maestro.data.transforms import prepare
from maestro.datasets.spec import ModalitySpec
from maestro.store.zarr_store import Store
from maestro.utils.atomic import write_json

log = logging.getLogger(__name__)


class CorrelationAccumulator:
    """Streaming first and second moments of C channels (float64)."""

    def __init__(self, channels: int) -> None:
        self.n = 0
        self.s = np.zeros(channels)
        self.ss = np.zeros((channels, channels))

    def update(self, x: np.ndarray) -> None:
        """Add pixels ``(N, C)`` (rows with a non-finite value are skipped)."""
        x = x[np.isfinite(x).all(axis=1)].astype(np.float64)
        self.n += len(x)
        self.s += x.sum(0)
        self.ss += x.T @ x

    def correlation(self) -> np.ndarray:
        """``(C, C)`` Pearson correlation; constant channels get 0 off the diagonal."""
        if self.n < 2:
            raise ValueError("correlation needs at least two valid pixels")
        mean = self.s / self.n
        cov = self.ss / self.n - np.outer(mean, mean)
        std = np.sqrt(np.clip(np.diag(cov), 0, None))
        denom = np.outer(std, std)
        corr = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
        np.fill_diagonal(corr, 1.0)
        return np.clip(corr, -1.0, 1.0)


def modality_pixels(store: Store, i: int, spec: ModalitySpec) -> np.ndarray:
    """Pixels of sample ``i`` as ``(N, C_model)`` prepared values; cloudy pixels dropped,
    non-finite values kept (the accumulator skips those rows)."""
    data, _, invalid = store.read(i, spec.stored)
    x = prepare(data, spec, fill_nonfinite=False)  # [T, C, H, W] model bands, NaN kept
    pix = np.moveaxis(x, 1, -1)  # [T, H, W, C]
    if invalid is not None:
        pix = pix[~invalid]
    return pix.reshape(-1, pix.shape[-1])


def cluster_bands(corr: np.ndarray, bands: Sequence[str], threshold: float) -> list[list[str]]:
    """Average-linkage clustering on ``1 - |r|`` cut at ``threshold``.

    Groups are ordered by their first band, bands within a group in the given order.
    """
    if len(bands) == 1:
        return [list(bands)]
    dist = 1.0 - np.abs(corr)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    labels = fcluster(z, t=threshold, criterion="distance")
    groups: dict[int, list[str]] = {}
    for band, lab in zip(bands, labels, strict=True):
        groups.setdefault(int(lab), []).append(band)
    return sorted(groups.values(), key=lambda g: list(bands).index(g[0]))


def same_partition(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> bool:
    """Whether two groupings are the same partition (order-free)."""
    return {frozenset(g) for g in a} == {frozenset(g) for g in b}


def analyze_store(
    store_path: str | Path,
    out_json: str | Path,
    out_png: str | Path | None = None,
    threshold: float = 0.15,
    scheme: str = "default",
    max_samples: int | None = None,
) -> dict[str, Any]:
    """Correlations and groups of every modality of a store's train split; writes JSON (+ PNG).

    Returns ``{"store", "threshold", "samples", "modalities": {m: {"bands", "correlation",
    "groups", "spec_groups", "matches_spec", "pixels"}}}``.
    """
    store = Store(store_path)
    spec = store.spec
    idx = store.indices(scheme, ["train"])
    if max_samples is not None:
        idx = idx[:max_samples]
    if len(idx) == 0:
        raise ValueError(f"{store_path}: no train samples in split scheme {scheme!r}")
    result: dict[str, Any] = {
        "store": spec.name,
        "threshold": threshold,
        "samples": len(idx),
        "modalities": {},
    }
    for m in spec.stored_modalities:
        acc = CorrelationAccumulator(m.channels)
        for i in idx:
            acc.update(modality_pixels(store, int(i), m))
        if acc.n < 2:
            why = "masked invalid (clouds) or not finite" if m.has_mask else "not finite"
            raise ValueError(
                f"{store_path}: the band analysis of modality {m.name!r} needs at least two "
                f"valid pixels in the train split ({len(idx)} samples, scheme {scheme!r}); "
                f"found {acc.n}: every pixel is {why}"
            )
        corr = acc.correlation()
        groups = cluster_bands(corr, m.model_bands, threshold)
        spec_groups = [list(g) for g in m.norm_groups]
        result["modalities"][m.name] = {
            "bands": list(m.model_bands),
            "correlation": np.round(corr, 6).tolist(),
            "groups": groups,
            "spec_groups": spec_groups,
            "matches_spec": same_partition(groups, spec_groups),
            "pixels": acc.n,
        }
        log.info("%s/%s: groups %s (spec %s)", spec.name, m.name, groups, spec_groups)
    write_json(out_json, result)
    if out_png is not None:
        from maestro.analysis.plot import correlation_figure

        correlation_figure(result, out_png)
    return result
