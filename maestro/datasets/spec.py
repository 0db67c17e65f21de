"""Declarations of modalities, stores and benchmark datasets, as frozen data.

Every number a user sees about a dataset (bands, groups, resolution, dates, scaling,
classes) is declared once in this package; readers, the demo generator, the model and
the reports derive what they need from these objects.

Vocabulary
- A *store* is one raw distribution converted to one Zarr store (TreeSatAI-TS, PASTIS-HD,
  FLAIR-HUB). It holds every modality the distribution ships that the pipeline uses.
- A *dataset* is a benchmark task on a store: its inputs (a subset of the store's
  modalities), its split scheme and its labels. FLAIR#2 is a dataset on the FLAIR-HUB store.
- Band names are the identity of a channel. Token groups and normalization groups are
  written as band names; the model channel order is the concatenation of the token
  groups (this is also the reorder applied at load time, as with the ``bands`` lists of
  IGNF/MAESTRO's dataset configs).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Scaling:
    """Load-time value scaling: ``x <- ln(max(x, 1e-10))`` if ``log`` (``x <= 0``: missing), then
    ``x / divisor``."""

    divisor: float = 1.0
    log: bool = False


@dataclass(frozen=True)
class ModalitySpec:
    """One raster modality as stored and as fed to the model.

    Attributes:
        name: modality key ("aerial", "s2", "s1_asc", ...), also the Zarr array group name.
        bands: band names in *file* (storage) order.
        dtype: storage dtype, as distributed.
        resolution_m: ground sampling distance in metres.
        patch_size: pixels per token side at model input.
        num_dates: dates fed to the model; 1 for single-date modalities.
        temporal: True for time series (variable raw length, aggregated to ``num_dates``).
        scaling: value scaling at load time.
        token_groups: tokenization groups as band names; one group = joint-token fusion.
        norm_groups: patch-group-wise target normalization groups, as band names.
        fusion_group: sequence group name in "group" fusion (MAESTRO ``name_group``).
        embed_key: tokenizer sharing key (MAESTRO ``name_embed``).
        wavelengths_um: centre wavelength per band (file order), None where not optical.
        has_mask: the store holds a per-pixel invalid (cloud/snow) mask for this modality.
        transform: optional named transform after scaling ("relative_height" for DEM).
        image_size: model input side in pixels; the crop is resized to it (nearest) when it
            differs from the crop's pixels (S2-NAIP's x4 aerial; cross-dataset transfer).
        source: the stored modality this one reads (its bands and resolution); None = its own
            array. S2-NAIP's "spot" reads the RGB of the NAIP image stored as "aerial".
    """

    name: str
    bands: tuple[str, ...]
    dtype: str
    resolution_m: float
    patch_size: int
    num_dates: int
    temporal: bool
    scaling: Scaling
    token_groups: tuple[tuple[str, ...], ...]
    norm_groups: tuple[tuple[str, ...], ...]
    fusion_group: str | None = None
    embed_key: str | None = None
    wavelengths_um: tuple[float | None, ...] = ()
    has_mask: bool = False
    transform: str | None = None
    image_size: int | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        model_bands = [b for g in self.token_groups for b in g]
        if sorted(model_bands) != sorted(set(model_bands)) or not set(model_bands) <= set(
            self.bands
        ):
            raise ValueError(
                f"modality {self.name!r}: token_groups {self.token_groups} must use each of "
                f"the bands {self.bands} at most once"
            )
        norm_bands = [b for g in self.norm_groups for b in g]
        if sorted(norm_bands) != sorted(model_bands):
            raise ValueError(
                f"modality {self.name!r}: norm_groups {self.norm_groups} must partition the "
                f"model bands {tuple(model_bands)}"
            )
        if self.wavelengths_um and len(self.wavelengths_um) != len(self.bands):
            raise ValueError(f"modality {self.name!r}: one wavelength per band is required")
        if self.num_dates < 1 or (not self.temporal and self.num_dates != 1):
            raise ValueError(f"modality {self.name!r}: bad num_dates {self.num_dates}")

    # --- derived properties -------------------------------------------------------------
    @property
    def stored(self) -> str:
        """Name of the store array holding this modality's pixels."""
        return self.source or self.name

    @property
    def group(self) -> str:
        """Fusion group name (own name when not shared with other modalities)."""
        return self.fusion_group or self.name

    @property
    def embed(self) -> str:
        """Tokenizer key."""
        return self.embed_key or self.name

    @property
    def model_bands(self) -> tuple[str, ...]:
        """Band names in model channel order (concatenated token groups)."""
        return tuple(b for g in self.token_groups for b in g)

    @property
    def channels(self) -> int:
        """Number of channels fed to the model."""
        return len(self.model_bands)

    @property
    def model_band_index(self) -> tuple[int, ...]:
        """Index into the stored bands for each model channel (the load-time reorder)."""
        return tuple(self.bands.index(b) for b in self.model_bands)

    @property
    def token_group_sizes(self) -> tuple[int, ...]:
        """Channels per token group, in model order."""
        return tuple(len(g) for g in self.token_groups)

    @property
    def norm_group_index(self) -> tuple[tuple[int, ...], ...]:
        """Normalization groups as indices into the model channels."""
        order = self.model_bands
        return tuple(tuple(order.index(b) for b in g) for g in self.norm_groups)

    def pixels(self, meters: float) -> int:
        """Pixel count covering ``meters`` at this modality's resolution (must be whole)."""
        px = meters / self.resolution_m
        if abs(px - round(px)) > 1e-6:
            raise ValueError(
                f"modality {self.name!r}: {meters} m is not a whole number of "
                f"{self.resolution_m} m pixels"
            )
        return round(px)

    def input_px(self, meters: float) -> int:
        """Model input side for a crop of ``meters``: ``image_size``, else the crop's pixels."""
        return self.image_size or self.pixels(meters)

    def grid(self, meters: float) -> int:
        """Token grid side for a crop of ``meters``."""
        px = self.input_px(meters)
        if px % self.patch_size:
            raise ValueError(
                f"modality {self.name!r}: input of {px} px is not divisible by patch "
                f"size {self.patch_size}"
            )
        return px // self.patch_size


@dataclass(frozen=True)
class LabelSpec:
    """The label as stored (raw values) in a store.

    ``kind="fractions"``: a vector of class area fractions per sample (TreeSatAI-TS).
    ``kind="raster"``: a single-band class raster at ``resolution_m`` (PASTIS, FLAIR).
    """

    kind: Literal["fractions", "raster"]
    names: tuple[str, ...]  # raw class names; raw value v (or column v) is names[v]
    dtype: str
    grid_modality: str | None = None  # raster only: the label shares this modality's pixels


@dataclass(frozen=True)
class StoreSpec:
    """A raw distribution converted to one Zarr store.

    Attributes:
        name: store name ("treesatai_ts", "pastis_hd", "flair_hub").
        modalities: every raster modality held in the store.
        label: the raw label.
        tile_m: side of a stored tile in metres (MAESTRO ``total_meters``).
        crop_m: side of a training/eval crop in metres (``crop_meters``).
        grid_pos_enc: side of the dataset-level sin-cos grid (positions over ``crop_m``).
        split_schemes: names of the split assignments the store carries.
        crs: coordinate reference system of the tiles ("" when it varies per tile).
        ref_date: fixed reference date "YYYYMMDD", or None when it comes from the data.
        crops_per_side: crops per tile side of the deterministic eval tiling (MAESTRO
            ``repeats``); None = ``tile_m / crop_m``, which must then be whole.

    A store without ``label`` serves pretraining only (S2-NAIP).
    """

    name: str
    modalities: tuple[ModalitySpec, ...]
    label: LabelSpec | None
    tile_m: float
    crop_m: float
    grid_pos_enc: int
    split_schemes: tuple[str, ...] = ("default",)
    crs: str = ""
    ref_date: str | None = None
    crops_per_side: int | None = None

    def __post_init__(self) -> None:
        ratio = self.tile_m / self.crop_m
        if self.crops_per_side is None and abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"store {self.name!r}: tile {self.tile_m} m is not a whole number of "
                f"{self.crop_m} m crops"
            )
        if self.label is not None and self.label.kind == "fractions" and ratio > 1 + 1e-6:
            # a crop would carry the whole tile's fractions, and correlated crops of one tile
            # would count as independent test items
            raise ValueError(
                f"store {self.name!r}: labels are area fractions of the whole "
                f"{self.tile_m} m tile, so crops must cover it (crop_m = tile_m), found "
                f"crop_m {self.crop_m}"
            )
        names = {m.name for m in self.modalities}
        for m in self.modalities:
            m.pixels(self.tile_m)
            m.grid(self.crop_m)
            if m.source is not None:
                src = next((s for s in self.modalities if s.name == m.source), None)
                if (
                    src is None
                    or src.source is not None
                    or (src.bands, src.resolution_m)
                    != (
                        m.bands,
                        m.resolution_m,
                    )
                ):
                    raise ValueError(
                        f"store {self.name!r}: modality {m.name!r} reads {m.source!r}, which "
                        f"must be a stored modality of {sorted(names)} with the same bands "
                        "and resolution"
                    )

    def modality(self, name: str) -> ModalitySpec:
        """Look a modality up by name."""
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(f"store {self.name!r} has no modality {name!r}")

    @property
    def repeats(self) -> int:
        """Crops per tile side: the deterministic eval tiling is ``repeats x repeats``."""
        return self.crops_per_side or round(self.tile_m / self.crop_m)

    @property
    def stored_modalities(self) -> tuple[ModalitySpec, ...]:
        """The modalities with an array of their own in the store."""
        return tuple(m for m in self.modalities if m.source is None)

    @property
    def gcd_px(self) -> int:
        """Common crop-offset grid: gcd of every modality's (and the label's) tile pixels."""
        return math.gcd(*(m.pixels(self.tile_m) for m in self.modalities))

    @property
    def label_resolution_m(self) -> float | None:
        """Pixel size of a raster label (that of its grid modality)."""
        if self.label is None or self.label.grid_modality is None:
            return None
        return self.modality(self.label.grid_modality).resolution_m


@dataclass(frozen=True)
class TaskSpec:
    """Downstream task of a dataset, on evaluated class ids.

    Attributes:
        kind: "multilabel" (classification of a crop) or "segmentation".
        classes: evaluated class names, index = class id.
        metric: headline metric, "weighted_f1" or "miou" (reported in %).
        threshold: multilabel only, a class is present if its area fraction > threshold.
        label_map: segmentation only, raw label value -> class id, or -1 (ignored).
        ref_modality: segmentation only, the modality whose token grid carries the head.
        colours: segmentation only, the dataset's published legend colour of each class
            (``#rrggbb``, index = class id) for the figures; None: a generic palette.
    """

    kind: Literal["multilabel", "segmentation"]
    classes: tuple[str, ...]
    metric: Literal["weighted_f1", "miou"]
    threshold: float | None = None
    label_map: tuple[int, ...] | None = None
    ref_modality: str | None = None
    colours: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.colours is not None and (
            len(self.colours) != len(self.classes)
            or not all(len(c) == 7 and c[0] == "#" for c in self.colours)
        ):
            raise ValueError(
                f"task colours: expected one '#rrggbb' per class ({len(self.classes)}), "
                f"found {self.colours}"
            )

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)


@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark dataset: a store, its inputs, its split scheme and its task.

    ``task`` None marks a pretraining-only dataset (S2-NAIP urban). ``pretrain_splits`` are
    the splits pretraining reads (train + val; S2-NAIP also test).
    """

    name: str
    title: str  # as printed in tables ("TreeSatAI-TS")
    store: StoreSpec
    inputs: tuple[str, ...]
    split_scheme: str
    task: TaskSpec | None
    pretrain_splits: tuple[str, ...] = ("train", "val")

    def __post_init__(self) -> None:
        for name in self.inputs:
            self.store.modality(name)
        if self.split_scheme not in self.store.split_schemes:
            raise ValueError(f"dataset {self.name!r}: unknown split scheme {self.split_scheme}")
        if self.task is not None and self.store.label is None:
            raise ValueError(f"dataset {self.name!r}: a task needs a store with labels")
        if (
            self.task
            and self.task.kind == "segmentation"
            and self.task.ref_modality not in self.inputs
        ):
            raise ValueError(f"dataset {self.name!r}: ref_modality must be an input")

    @property
    def modalities(self) -> tuple[ModalitySpec, ...]:
        """Input modality specs, in declared order."""
        return tuple(self.store.modality(n) for n in self.inputs)


# --- overrides -----------------------------------------------------------------------------

#: Store-level keys a config may override (geometry of the tiles and crops).
STORE_OVERRIDABLE = ("tile_m", "crop_m", "grid_pos_enc")
#: Modality-level keys a config may override (``embed_key`` shares a tokenizer by name, e.g.
#: both S1 orbits on one "s1" tokenizer for cross-dataset transfer).
MODALITY_OVERRIDABLE = ("resolution_m", "patch_size", "num_dates", "embed_key", "image_size")


def apply_overrides(store: StoreSpec, overrides: dict[str, Any] | None) -> StoreSpec:
    """Return ``store`` with config overrides applied.

    ``overrides`` looks like ``{"tile_m": 320, "modalities": {"s2": {"num_dates": 6}}}``.
    Unknown keys raise ``ValueError`` naming the key and the allowed ones.
    """
    if not overrides:
        return store
    top = dict(overrides)
    mods = top.pop("modalities", {}) or {}
    bad = set(top) - set(STORE_OVERRIDABLE)
    if bad:
        raise ValueError(
            f"store {store.name!r}: cannot override {sorted(bad)}; allowed: "
            f"{[*STORE_OVERRIDABLE, 'modalities']}"
        )
    known = {m.name for m in store.modalities}
    if set(mods) - known:
        raise ValueError(
            f"store {store.name!r}: unknown modalities {sorted(set(mods) - known)} in "
            f"overrides; the store has {sorted(known)}"
        )
    new_mods = []
    for m in store.modalities:
        mo = mods.get(m.name) or {}
        bad = set(mo) - set(MODALITY_OVERRIDABLE)
        if bad:
            raise ValueError(
                f"store {store.name!r}, modality {m.name!r}: cannot override {sorted(bad)}; "
                f"allowed: {list(MODALITY_OVERRIDABLE)}"
            )
        new_mods.append(dataclasses.replace(m, **mo))
    return dataclasses.replace(store, modalities=tuple(new_mods), **top)


def to_dict(obj: Any) -> Any:
    """JSON-ready dict of a spec (for store attrs and provenance)."""
    return dataclasses.asdict(obj)


def modality_from_dict(d: dict[str, Any]) -> ModalitySpec:
    """Inverse of :func:`to_dict` for a modality."""
    d = dict(d)
    d["scaling"] = Scaling(**d["scaling"])
    for key in ("bands", "wavelengths_um"):
        d[key] = tuple(d[key])
    for key in ("token_groups", "norm_groups"):
        d[key] = tuple(tuple(g) for g in d[key])
    return ModalitySpec(**d)


def store_from_dict(d: dict[str, Any]) -> StoreSpec:
    """Inverse of :func:`to_dict` for a store."""
    d = dict(d)
    d["modalities"] = tuple(modality_from_dict(m) for m in d["modalities"])
    if d["label"] is not None:
        lab = dict(d["label"])
        lab["names"] = tuple(lab["names"])
        d["label"] = LabelSpec(**lab)
    d["split_schemes"] = tuple(d["split_schemes"])
    return StoreSpec(**d)


@dataclass(frozen=True)
class Catalog:
    """All stores and datasets after config overrides."""

    stores: dict[str, StoreSpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)

    def store(self, name: str) -> StoreSpec:
        """Look a store up, with a clear error."""
        try:
            return self.stores[name]
        except KeyError:
            raise KeyError(f"unknown store {name!r}; known: {sorted(self.stores)}") from None

    def dataset(self, name: str) -> DatasetSpec:
        """Look a dataset up, with a clear error."""
        try:
            return self.datasets[name]
        except KeyError:
            raise KeyError(f"unknown dataset {name!r}; known: {sorted(self.datasets)}") from None
