"""The record passed from a raw-format reader to the Zarr writer.

Readers (``maestro.data.readers.<store>``) implement :class:`RawReader`: ``index()`` lists
the samples from metadata only (cheap), ``read()`` loads one sample. The converter streams
``read()`` results into the store, so memory never grows with the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from maestro.datasets.spec import StoreSpec


@dataclass(frozen=True)
class SampleRef:
    """A sample as listed by :meth:`RawReader.index`.

    Attributes:
        sample_id: the distribution's id (TreeSatAI aerial stem, PASTIS patch id, FLAIR patch_id).
        splits: split scheme -> "train" | "val" | "test", or None when not in that scheme.
        ndates: temporal modality -> number of raw acquisitions.
    """

    sample_id: str
    splits: dict[str, str | None]
    ndates: dict[str, int] = field(default_factory=dict)


@dataclass
class RawSample:
    """One sample, as read from the raw files (storage dtypes, file band order).

    Attributes:
        sample_id: as in :class:`SampleRef`.
        rasters: modality -> ``(T, C, H, W)`` array; T = 1 for single-date modalities.
        dates: modality -> ``(T, 3)`` int16 ``(year, day_of_year, hour)``.
        invalid: masked modality -> ``(T, H, W)`` bool, True where cloud/snow flagged.
        label: ``(K,)`` float32 area fractions, ``(H, W)`` raw class raster, or None for a
            pretraining-only store.
        ref_date: ``(3,)`` int16 reference date of the sample.
        bounds: tile footprint ``(minx, miny, maxx, maxy)`` in ``crs``, if known.
        crs: CRS of ``bounds`` when it differs per sample (S2-NAIP UTM zones); None = the
            store's CRS.
    """

    sample_id: str
    rasters: dict[str, np.ndarray]
    dates: dict[str, np.ndarray]
    invalid: dict[str, np.ndarray]
    label: np.ndarray | None
    ref_date: np.ndarray
    bounds: tuple[float, float, float, float] | None = None
    crs: str | None = None


def in_time_order(sample: RawSample) -> RawSample:
    """Each series sorted by date, in place (stable: same-day acquisitions keep file order).

    The temporal aggregation (``maestro.data.temporal``) splits a series into chunks in the
    order it is stored, as upstream does in file order; the published files list their
    acquisitions chronologically, but a file that does not would mix seasons in every chunk
    without any error. Rasters, dates and invalid masks move together (decision D19).

    Returns:
        ``sample``, reordered where a series was not in time order.
    """
    for name, d in sample.dates.items():
        d = np.asarray(d)
        if d.ndim != 2 or len(d) < 2:
            continue
        key = d[:, 0].astype(np.int64) * 100_000 + d[:, 1].astype(np.int64) * 100 + d[:, 2]
        if np.all(key[1:] >= key[:-1]):
            continue
        order = np.argsort(key, kind="stable")
        sample.dates[name] = d[order]
        sample.rasters[name] = np.asarray(sample.rasters[name])[order]
        if name in sample.invalid:
            sample.invalid[name] = np.asarray(sample.invalid[name])[order]
    return sample


class RawReader(Protocol):
    """Reads one raw distribution in its published on-disk layout (see each reader module)."""

    store: StoreSpec
    root: Path

    def index(self) -> list[SampleRef]:
        """All samples of the split files, from metadata only."""
        ...

    def read(self, ref: SampleRef) -> RawSample:
        """Load one sample; raise ``RawFormatError`` naming the file on bad input."""
        ...
