"""Torch Dataset over a converted store: crops, temporal aggregation, scaling, augmentation.

Item ``k`` of a dataset with ``n_tiles`` tiles reads tile ``k % n_tiles`` (as upstream's
``maestro/dataset/dataset.py``):

- crop: offsets on the common gcd grid (``store.gcd_px``) with a crop of ``store.crop_m``;
  uniform random offsets at training, the deterministic ``repeats x repeats`` tiling at
  evaluation (``r = k // n_tiles``; row ``r // repeats``, column ``r % repeats``);
- per input modality (read from its stored array, ``ModalitySpec.stored``): the series is
  cropped, aggregated to ``num_dates``
  (:func:`maestro.data.temporal.select_dates`: random at training, medoid-like at
  evaluation), then scaled, transformed and reordered to model bands
  (:func:`maestro.data.transforms.prepare`), and resized (nearest, as upstream) to ``image_size``
  when set;
- augmentation (training with ``augment`` only; upstream also augments at eval,
  docs/decisions.md D1): flip H, flip W, transpose H<->W, each with p = 0.5, identical for
  every raster and the label.

All randomness of item ``k`` comes from ``np.random.default_rng([seed, epoch, k])``, so an
item is the same whatever the DataLoader worker count or order. This fixes an upstream quirk
(one numpy RNG seeded with 42, copied into every worker; docs/decisions.md D4). ``set_epoch``
must be called before the workers start (i.e. without ``persistent_workers``) to reach them.

Item (torch's default collate batches it as is):
``{"inputs": {mod: float32 (N, C, H, W)}, "dates": {mod: int64 (N, 3)}, "ref_date": int64 (3,),
"label": float32 (K,) multi-hot | int64 (h, w) class ids with -1 = ignore (absent for a
pretraining-only dataset),
"index": int64 () item index k, "tile": int64 () store sample index}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from maestro.data.temporal import select_dates
from maestro.data.transforms import date_choice_bands, missing_as_nan, prepare
from maestro.datasets.spec import DatasetSpec, StoreSpec
from maestro.store.zarr_store import Store


def spec_differences(found: StoreSpec, expected: StoreSpec) -> list[str]:
    """Fields on which a store's recorded spec differs from the declared one.

    Compared: tile size, and per modality its presence, bands, dtype, resolution, mask and
    temporal flag, and the label's kind, dtype, grid and class names. Model-side fields
    (patch size, num_dates, crop size, groups) may differ: they do not change the stored data.
    """
    diffs = []
    if found.tile_m != expected.tile_m:
        diffs.append(f"tile_m: store {found.tile_m} vs declared {expected.tile_m}")
    have = {m.name: m for m in found.stored_modalities}
    for m in expected.stored_modalities:
        if m.name not in have:
            diffs.append(f"{m.name}: missing from the store (has {sorted(have)})")
            continue
        for key in ("bands", "dtype", "resolution_m", "has_mask", "temporal"):
            a, b = getattr(have[m.name], key), getattr(m, key)
            if a != b:
                diffs.append(f"{m.name}.{key}: store {a} vs declared {b}")
    if (found.label is None) != (expected.label is None):
        diffs.append(f"label: store {found.label} vs declared {expected.label}")
    elif found.label is not None and expected.label is not None:
        for key in ("kind", "dtype", "grid_modality", "names"):
            a, b = getattr(found.label, key), getattr(expected.label, key)
            if a != b:
                diffs.append(f"label.{key}: store {a} vs declared {b}")
    return diffs


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of every frame ``(N, C, h, w) -> (N, C, size, size)``."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    t = torch.nn.functional.interpolate(torch.from_numpy(x), size=(size, size), mode="nearest")
    return t.numpy()


def _augment(a: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Flip H, flip W, then transpose the last two axes of ``a`` ``(..., H, W)`` per ``flips``."""
    if flips[0]:
        a = a[..., ::-1, :]
    if flips[1]:
        a = a[..., :, ::-1]
    if flips[2]:
        a = np.swapaxes(a, -1, -2)
    return np.ascontiguousarray(a)


class MaestroDataset(Dataset):
    """Crops of a converted store for one benchmark dataset (see the module docstring).

    Args:
        store_path: the ``<store>.zarr`` directory.
        dataset: the DatasetSpec (inputs, split scheme, task; its ``store`` gives geometry).
        splits: splits of ``dataset.split_scheme`` to include ("train", "val", "test").
        train: random crops and random date picks (else deterministic tiling and medoids).
        seed: base seed of every random draw.
        augment: flips/transposes when ``train``.
        max_tiles: keep only the first ``max_tiles`` tiles (store order), for smoke runs.
        store: an object with :class:`~maestro.store.zarr_store.Store`'s read interface
            (``spec``, ``path``, ``indices``, ``read``, ``label``, ``ref_date``) to read from
            instead of the store at ``store_path`` (e.g. the raw-backed store of
            ``benchmarks/bench_data.py``); it is pickled with the dataset.
        in_memory: keep every decoded sample in memory after its first read
            (:class:`~maestro.store.zarr_store.Store`; for small stores).

    Raises:
        ValueError: the store was converted with a different spec (names the path and fields).
    """

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        dataset: DatasetSpec,
        splits: Sequence[str],
        train: bool,
        seed: int = 0,
        augment: bool = True,
        max_tiles: int | None = None,
        store: Any = None,
        in_memory: bool = False,
    ) -> None:
        self.store_path = store_path
        self.in_memory = in_memory
        self.dataset = dataset
        self.splits = tuple(splits)
        self.train = train
        self.seed = int(seed)
        self.augment = augment
        self.epoch = 0
        self._injected = store is not None
        store = store if store is not None else Store(store_path, in_memory)
        diffs = spec_differences(store.spec, dataset.store)
        if diffs:
            raise ValueError(
                f"{store.path}: store does not match dataset {dataset.name!r} (converted with "
                f"other overrides?): " + "; ".join(diffs)
            )
        tiles = store.indices(dataset.split_scheme, self.splits)
        self.tiles = tiles if max_tiles is None else tiles[:max_tiles]
        geo = dataset.store
        self.repeats = geo.repeats
        self.gcd = geo.gcd_px
        crop_gcd = self.gcd * geo.crop_m / geo.tile_m
        if abs(crop_gcd - round(crop_gcd)) > 1e-6:
            raise ValueError(
                f"dataset {dataset.name!r}: crop of {geo.crop_m} m is not a whole number of "
                f"gcd cells ({self.gcd} per {geo.tile_m} m tile)"
            )
        self.crop_gcd = round(crop_gcd)
        # opened lazily, in the process that reads (an injected store is kept as is)
        self._store: Any = store if self._injected else None

    def __len__(self) -> int:
        return len(self.tiles) * self.repeats**2

    def require(self, need: int, purpose: str) -> None:
        """Raise ``ValueError`` unless the split(s) hold at least ``need`` items, naming the
        store, the split(s) and the split scheme (checked before any training)."""
        if len(self) < need:
            splits = " + ".join(self.splits)
            raise ValueError(
                f"{self.store_path}: split {splits} of {self.dataset.name} (scheme "
                f"{self.dataset.split_scheme!r}) has {len(self)} item(s); {purpose} needs at "
                f"least {need}"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (crops, dates, flips)."""
        self.epoch = int(epoch)

    @property
    def store(self) -> Any:
        """The store (a :class:`Store` unless one was injected), opened on first use."""
        if self._store is None:
            self._store = Store(self.store_path, self.in_memory)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not self._injected:
            state["_store"] = None
        return state

    # --- geometry ------------------------------------------------------------------------
    def offsets(self, k: int, rng: np.random.Generator) -> tuple[int, int]:
        """Crop offset (row, col) of item ``k`` in gcd cells."""
        if self.train:
            i, j = rng.integers(0, self.gcd - self.crop_gcd + 1, size=2)
            return int(i), int(j)
        r = k // len(self.tiles)  # offsets r * gcd // repeats: S2-NAIP's 0, 12, 25, 38, 51
        row, col = divmod(r, self.repeats)
        return row * self.gcd // self.repeats, col * self.gcd // self.repeats

    def window(self, modality: str, offset: tuple[int, int]) -> tuple[slice, slice]:
        """Pixel window of ``modality`` for a gcd offset."""
        geo = self.dataset.store
        f = geo.modality(modality).pixels(geo.tile_m) // self.gcd
        i, j = offset
        return slice(i * f, (i + self.crop_gcd) * f), slice(j * f, (j + self.crop_gcd) * f)

    # --- item ----------------------------------------------------------------------------
    def _label(self, tile: int, offset: tuple[int, int], flips: np.ndarray | None) -> torch.Tensor:
        task, geo = self.dataset.task, self.dataset.store
        if task.kind == "multilabel":
            assert task.threshold is not None
            raw = self.store.label(tile)
            return torch.from_numpy((raw > task.threshold).astype(np.float32))
        assert task.label_map is not None and geo.label.grid_modality is not None
        raw = self.store.label(tile, window=self.window(geo.label.grid_modality, offset))
        lut = np.asarray(task.label_map, dtype=np.int64)
        if raw.size and int(raw.max()) >= len(lut):
            raise ValueError(
                f"{self.store.path}: sample {tile} has label value {int(raw.max())} outside "
                f"the label map of {self.dataset.name!r} ({len(lut)} raw values)"
            )
        ids = lut[raw.astype(np.int64)]
        if flips is not None:
            ids = _augment(ids, flips)
        return torch.from_numpy(ids)

    def __getitem__(self, k: int) -> dict[str, Any]:
        if not 0 <= k < len(self):
            raise IndexError(f"item {k} out of range [0, {len(self)})")
        tile = int(self.tiles[k % len(self.tiles)])
        rng = np.random.default_rng([self.seed, self.epoch, int(k)])
        offset = self.offsets(k, rng)
        inputs, dates = {}, {}
        for m in self.dataset.modalities:
            # decodes only the stored chunks under the crop
            data, when, invalid = self.store.read(
                tile, m.stored, window=self.window(m.name, offset)
            )
            data = missing_as_nan(data, m)  # S1 zeros, optical fills: no measurement (D20, D26)
            bands = date_choice_bands(m)  # only bands the model reads decide (D21)
            choice = data if bands is None else data[:, bands]
            try:
                keep = select_dates(choice, invalid, m.num_dates, rng if self.train else None)
            except ValueError as err:
                raise ValueError(f"{self.store.path}: sample {tile}, {m.name}: {err}") from err
            x = prepare(data[keep], m)  # (N, C_model, h, w) float32
            inputs[m.name] = resize(x, m.input_px(self.dataset.store.crop_m))
            dates[m.name] = torch.from_numpy(when[keep].astype(np.int64))  # (N, 3)
        flips = rng.random(3) < 0.5 if self.train and self.augment else None
        if flips is not None:
            inputs = {name: _augment(x, flips) for name, x in inputs.items()}
        return {
            "inputs": {
                name: torch.from_numpy(np.ascontiguousarray(x)) for name, x in inputs.items()
            },
            "dates": dates,
            "ref_date": torch.from_numpy(self.store.ref_date(tile).astype(np.int64)),
            **({"label": self._label(tile, offset, flips)} if self.dataset.task else {}),
            "index": torch.tensor(k, dtype=torch.int64),
            "tile": torch.tensor(tile, dtype=torch.int64),
        }
