"""Load-time value transforms declared per modality (IGNF/MAESTRO's scaling and DEM rescale)."""

from __future__ import annotations

import numpy as np

from maestro.datasets.spec import ModalitySpec

#: DEM relative-height factor: channel 1 <- 30 * (DSM - DTM) after the /1000 scaling.
RELATIVE_HEIGHT_FACTOR = 30.0


def scale(x: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """Cast to float32 and apply the modality's scaling: optional ``ln(max(x, 1e-10))``, then
    ``/ divisor``."""
    x = np.asarray(x, dtype=np.float32)
    if spec.scaling.log:
        x = np.log(np.maximum(x, np.float32(1e-10)))
    return x / np.float32(spec.scaling.divisor)


def apply_transform(x: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """Apply the modality's named transform on scaled values ``(..., C, H, W)`` in file band
    order."""
    if spec.transform is None:
        return x
    if spec.transform == "relative_height":
        # channel 1 (DTM) becomes the relative height 30 * (DSM - DTM); channel 0 stays DSM
        out = x.copy()
        out[..., 1, :, :] = RELATIVE_HEIGHT_FACTOR * (x[..., 0, :, :] - x[..., 1, :, :])
        return out
    raise ValueError(f"modality {spec.name!r}: unknown transform {spec.transform!r}")


def to_model_bands(x: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """Reorder/select channels ``(..., C_file, H, W)`` -> ``(..., C_model, H, W)``."""
    return x[..., list(spec.model_band_index), :, :]


def prepare(x: np.ndarray, spec: ModalitySpec, fill_nonfinite: bool = True) -> np.ndarray:
    """Raw stored values -> model input values: scale, transform, reorder.

    Non-finite values (NaN backscatter in real TreeSatAI-TS S1 series, for instance) become 0
    after scaling, so a model never sees NaN (docs/decisions.md D6); ``fill_nonfinite=False``
    keeps them (for statistics that skip them).
    """
    x = to_model_bands(apply_transform(scale(x, spec), spec), spec)
    if not fill_nonfinite:
        return x
    if np.isfinite(x).all():  # the usual case: one pass instead of nan_to_num's five
        return x
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
