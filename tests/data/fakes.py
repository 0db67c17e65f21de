"""A seeded fake RawReader producing valid RawSamples for small versions of the real stores.

The stores come from ``maestro.datasets.catalog`` with overrides that shrink the tiles (so
the same declarations as the real data are exercised), and every sample has its own
number of acquisitions per temporal modality and, where the modality has a mask, cloudy
acquisitions. ``corrupt`` makes chosen samples violate the spec, and the reader counts
how many RawSamples are alive (to test that the converter streams) and which samples it
read (to test what a resumed conversion reads again).
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np

from maestro.data.errors import RawFormatError
from maestro.data.sample import RawSample, SampleRef
from maestro.datasets import catalog
from maestro.datasets.spec import Catalog, ModalitySpec, StoreSpec

#: Overrides that make every store tiny while keeping all of its modalities.
SMALL = {
    "treesatai_ts": {
        "modalities": {
            "aerial": {"resolution_m": 2.0, "patch_size": 10},  # 30 px
            "s2": {"num_dates": 3},
            "s1_asc": {"num_dates": 2},
            "s1_des": {"num_dates": 2},
        }
    },
    "pastis_hd": {
        "tile_m": 320.0,  # 2 x 2 crops of 160 m
        "modalities": {
            "spot": {"resolution_m": 5.0},  # 64 px
            "s2": {"num_dates": 3},  # 32 px
            "s1_asc": {"num_dates": 2},
            "s1_des": {"num_dates": 2},
        },
    },
    "s2_naip": {
        "modalities": {
            "aerial": {"resolution_m": 10.0, "patch_size": 4, "image_size": 48},  # 12 -> 48 px
            "spot": {"resolution_m": 10.0, "patch_size": 4, "image_size": 16},
            "s2": {"num_dates": 3},
            "s1": {"num_dates": 2},
        }
    },
    "flair_hub": {
        "modalities": {
            "aerial": {"resolution_m": 3.2},  # 32 px
            "dem": {"resolution_m": 3.2},
            "s2": {"num_dates": 3},  # 10 px
            "s1_asc": {"num_dates": 2},
            "s1_des": {"num_dates": 2},
        }
    },
}


def small_catalog() -> Catalog:
    """The catalog with :data:`SMALL` overrides."""
    return catalog(SMALL)


def small_store(name: str) -> StoreSpec:
    """A shrunken StoreSpec of the real store ``name``."""
    return small_catalog().store(name)


def _values(rng: np.random.Generator, m: ModalitySpec, shape: tuple[int, ...]) -> np.ndarray:
    dtype = np.dtype(m.dtype)
    if dtype.kind in "iu":
        top = 256 if dtype.itemsize == 1 else 10000
        return rng.integers(0, top, size=shape).astype(dtype)
    if m.scaling.log:  # linear backscatter, a few zeros (log floor) and NaNs
        x = rng.uniform(1e-4, 1.0, size=shape)
        x[rng.random(shape) < 0.01] = 0.0
        x[rng.random(shape) < 0.01] = np.nan
        return x.astype(dtype)
    return rng.uniform(-25.0 if dtype == np.float16 else 0.0, m.scaling.divisor, shape).astype(
        dtype
    )


class FakeReader:
    """A RawReader over generated samples (no files).

    Args:
        store: the StoreSpec to honour.
        n_train, n_val, n_test: samples per default-scheme split.
        seed: every value derives from ``(seed, sample number)``.
        tlim: (min, max) raw acquisitions of temporal modalities.
        cloudy: share of cloudy acquisitions in masked modalities.
        corrupt: sample id -> "bands" | "ndates" | "dtype" | "label" | "mask" | "missing" |
            "crs" (a tile CRS that contradicts the store's, or none where the store needs one) |
            "truncated" (``read`` raises as a reader does on a truncated file).
        root: reported root path (used in error messages).
    """

    def __init__(
        self,
        store: StoreSpec,
        n_train: int = 6,
        n_val: int = 3,
        n_test: int = 3,
        seed: int = 0,
        tlim: tuple[int, int] = (1, 7),
        cloudy: float = 0.4,
        corrupt: dict[str, str] | None = None,
        root: Path = Path("/fake/raw"),
    ) -> None:
        self.store = store
        self.root = root
        self.seed = seed
        self.cloudy = cloudy
        self.corrupt = corrupt or {}
        self.live = 0
        self.max_live = 0
        self.reads = 0
        self.read_ids: list[str] = []
        rng = np.random.default_rng([seed, 10**6])
        n = n_train + n_val + n_test
        splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
        splits = [str(v) for v in rng.permutation(splits)]  # ids interleave the splits
        self._refs = []
        for k in rng.permutation(n):  # listed in a shuffled order
            k = int(k)
            schemes: dict[str, str | None] = {"default": splits[k]}
            for other in store.split_schemes[1:]:  # a different, partial assignment
                schemes[other] = [None, "train", "val", "test"][int(rng.integers(0, 4))]
            ndates = {
                m.name: int(rng.integers(tlim[0], tlim[1] + 1)) for m in store.stored_modalities
            }
            ndates = {m.name: ndates[m.name] for m in store.stored_modalities if m.temporal}
            self._refs.append(SampleRef(f"tile_{k:03d}", schemes, ndates))

    def index(self) -> list[SampleRef]:
        return list(self._refs)

    def _release(self) -> None:
        self.live -= 1

    def read(self, ref: SampleRef) -> RawSample:
        self.reads += 1
        self.read_ids.append(ref.sample_id)
        if self.corrupt.get(ref.sample_id) == "truncated":
            path = self.root / f"{ref.sample_id}.h5"
            raise RawFormatError(path, "a readable HDF5 file", "OSError: truncated file")
        self.max_live = max(self.max_live, self.live)
        k = int(ref.sample_id.split("_")[1])
        sample = self.make(k, ref)
        self.live += 1
        weakref.finalize(sample, self._release)
        return sample

    def make(self, k: int, ref: SampleRef) -> RawSample:
        """The (deterministic) sample number ``k``."""
        store, rng = self.store, np.random.default_rng([self.seed, k])
        rasters, dates, invalid = {}, {}, {}
        for m in store.stored_modalities:
            t, p = (ref.ndates[m.name] if m.temporal else 1), m.pixels(store.tile_m)
            rasters[m.name] = _values(rng, m, (t, len(m.bands), p, p))
            doy = np.sort(rng.choice(np.arange(1, 366), size=t, replace=False))
            dates[m.name] = np.stack([np.full(t, 2020), doy, np.zeros(t)], 1).astype(np.int16)
            if m.has_mask:
                cloudy = rng.random(t) < self.cloudy
                blobs = rng.random((t, p, p)) < 0.3
                invalid[m.name] = blobs & cloudy[:, None, None]
        if store.label is None:
            label = None
        elif store.label.kind == "fractions":
            k_cls = len(store.label.names)
            frac = rng.dirichlet(np.full(k_cls, 0.3)).astype(np.float32)
            label = np.where(frac > 0.02, frac, 0).astype(np.float32)
        else:
            assert store.label.grid_modality is not None
            p = store.modality(store.label.grid_modality).pixels(store.tile_m)
            label = rng.integers(0, len(store.label.names), (p, p)).astype(store.label.dtype)
        bounds = None if k % 3 == 0 else (1000.0 * k, 2000.0, 1000.0 * k + store.tile_m, 2060.0)
        crs = None
        if not store.crs and bounds is not None:  # tiles in their own UTM zone (S2-NAIP)
            crs = f"EPSG:{32610 + k % 2}"
            bounds = (5e5 + 1000.0 * k, 4e6, 5e5 + 1000.0 * k + store.tile_m, 4e6 + store.tile_m)
        sample = RawSample(
            sample_id=ref.sample_id,
            rasters=rasters,
            dates=dates,
            invalid=invalid,
            label=label,
            ref_date=np.array([2020, 100 + k, 0], np.int16),
            bounds=bounds,
            crs=crs,
        )
        self._corrupt(sample)
        return sample

    def _corrupt(self, s: RawSample) -> None:
        kind = self.corrupt.get(s.sample_id)
        first = next(m for m in self.store.stored_modalities if m.temporal)
        if kind == "bands":
            s.rasters[first.name] = s.rasters[first.name][:, 1:]
        elif kind == "ndates":
            x = s.rasters[first.name]
            s.rasters[first.name] = np.concatenate([x, x[:1]])
        elif kind == "dtype":
            s.rasters[first.name] = s.rasters[first.name].astype(np.float64)
        elif kind == "label":
            s.label = s.label[..., :-1]
        elif kind == "mask":
            m = next(m for m in self.store.stored_modalities if not m.has_mask)
            s.invalid[m.name] = np.zeros(s.rasters[m.name].shape[:1] + s.rasters[m.name].shape[2:])
        elif kind == "missing":
            del s.rasters[first.name]
        elif kind == "crs":
            s.bounds = s.bounds or (0.0, 0.0, 1.0, 1.0)
            s.crs = "EPSG:4326" if self.store.crs else None
        elif kind not in (None, "truncated"):
            raise ValueError(f"unknown corruption {kind!r}")
