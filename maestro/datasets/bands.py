"""Band vocabularies shared by several stores (names and centre wavelengths)."""

from __future__ import annotations

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
