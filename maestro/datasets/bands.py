"""Sensor families shared by several stores: band names, wavelengths, groups, and one
constructor per family so that each store only states what differs (dtype, resolution,
scaling, patch size)."""

from __future__ import annotations

from maestro.datasets.spec import ModalitySpec, Scaling

#: Sentinel-2 L2A bands used by MAESTRO, in the order every distribution stores them.
S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: Centre wavelengths (µm) of :data:`S2_BANDS`.
S2_WAVELENGTHS = (0.490, 0.560, 0.665, 0.705, 0.740, 0.783, 0.842, 0.865, 1.610, 2.190)
#: Patch-group-wise normalization groups of S2 (MAESTRO ``norm_bands=[4, 4, 2]``):
#: visible + red-edge 1, red-edge 2-3 + NIR, SWIR.
S2_NORM_GROUPS = (("B2", "B3", "B4", "B5"), ("B6", "B7", "B8", "B8A"), ("B11", "B12"))

#: Sentinel-1 polarisations (C band; no optical wavelength).
S1_BANDS = ("VV", "VH")
S1_NORM_GROUPS = (("VV",), ("VH",))

#: Centre wavelengths (µm) of aerial / SPOT channels.
OPTICAL_WAVELENGTHS = {"B": 0.48, "G": 0.56, "R": 0.64, "NIR": 0.81}
#: Aerial model order for every store: NIR first, then R, G, B (see docs/decisions.md).
AERIAL_MODEL_ORDER = ("NIR", "R", "G", "B")
AERIAL_NORM_GROUPS = (("NIR",), ("R", "G", "B"))


def wavelengths(bands: tuple[str, ...]) -> tuple[float | None, ...]:
    """Wavelength per band name (None for non-optical bands)."""
    table = dict(zip(S2_BANDS, S2_WAVELENGTHS, strict=True)) | OPTICAL_WAVELENGTHS
    return tuple(table.get(b) for b in bands)


def aerial(file_bands: tuple[str, ...], resolution_m: float, patch_size: int) -> ModalitySpec:
    """Very-high-resolution RGB+NIR aerial image (uint8, /255), reordered to NIR, R, G, B."""
    return ModalitySpec(
        name="aerial",
        bands=file_bands,
        dtype="uint8",
        resolution_m=resolution_m,
        patch_size=patch_size,
        num_dates=1,
        temporal=False,
        scaling=Scaling(divisor=255.0),
        token_groups=(AERIAL_MODEL_ORDER,),
        norm_groups=AERIAL_NORM_GROUPS,
        wavelengths_um=wavelengths(file_bands),
    )


def sentinel2(dtype: str, resolution_m: float, divisor: float, has_mask: bool) -> ModalitySpec:
    """Sentinel-2 L2A time series, 16 model dates, joint-token, groups [4, 4, 2]."""
    return ModalitySpec(
        name="s2",
        bands=S2_BANDS,
        dtype=dtype,
        resolution_m=resolution_m,
        patch_size=2,
        num_dates=16,
        temporal=True,
        scaling=Scaling(divisor=divisor),
        token_groups=(S2_BANDS,),
        norm_groups=S2_NORM_GROUPS,
        wavelengths_um=wavelengths(S2_BANDS),
        has_mask=has_mask,
    )


def sentinel1(
    name: str, file_bands: tuple[str, ...], dtype: str, resolution_m: float, scaling: Scaling
) -> ModalitySpec:
    """One Sentinel-1 orbit (``s1_asc``/``s1_des``), VV and VH only, 4 model dates; both
    orbits share the fusion group "s1"."""
    return ModalitySpec(
        name=name,
        bands=file_bands,
        dtype=dtype,
        resolution_m=resolution_m,
        patch_size=2,
        num_dates=4,
        temporal=True,
        scaling=scaling,
        token_groups=(S1_BANDS,),
        norm_groups=S1_NORM_GROUPS,
        fusion_group="s1",
        wavelengths_um=wavelengths(file_bands),
    )
