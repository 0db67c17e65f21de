"""Load-time value transforms declared per modality (IGNF/MAESTRO's scaling and DEM rescale)."""

from __future__ import annotations

import numpy as np

from maestro.datasets.spec import ModalitySpec

#: DEM relative-height factor: channel 1 <- 30 * (DSM - DTM) after the /1000 scaling.
RELATIVE_HEIGHT_FACTOR = 30.0


#: Scaled optical values below this are a no-data fill, not reflectance (THEIA L2A fills
#: with -10000, i.e. -1.0; atmospheric correction leaves at most a few -0.01).
OPTICAL_FILL_BELOW = -0.1


def is_optical(spec: ModalitySpec) -> bool:
    """Reflectance bands only (every centre wavelength below 3 um, no transform)."""
    w = spec.wavelengths_um
    return bool(w) and all(v is not None and v < 3.0 for v in w) and spec.transform is None


def missing_as_nan(x: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """Stored values that are no measurement, as NaN (``x`` itself when there are none).

    Linear backscatter (a log-scaled modality) is positive; Sentinel-1 GRD products fill
    no-data and border noise with 0 (the real TreeSatAI-TS patch has zeros in 6 of its
    ascending and 4 of its descending dates). Upstream clamps them to ``ln(1e-10) / 5 =
    -4.6``, far below every measured value (-1.9 to -0.1 on that patch); here they are
    missing like NaN: their acquisition counts as dirty when dates are chosen, statistics
    skip them, and the model sees 0 (docs/decisions.md D20).

    Optical ``(T, C, H, W)`` series: a pixel that is 0 in every band (the Sentinel-2 L2A
    no-data value, an all-black fill) and a value below :data:`OPTICAL_FILL_BELOW` after
    scaling (a -9999 / -10000 fill) are missing the same way (D26).
    """
    a = np.asarray(x)
    if spec.scaling.log:
        bad = a <= 0
    elif is_optical(spec) and a.ndim == 4:
        bad = np.broadcast_to(np.all(a == 0, axis=1, keepdims=True), a.shape)
        if a.dtype.kind != "u":
            bad = bad | (a < OPTICAL_FILL_BELOW * spec.scaling.divisor)
    else:
        return x
    if not bad.any():
        return x
    out = np.array(a, dtype=np.float32)
    out[bad] = np.nan
    return out


def date_choice_bands(spec: ModalitySpec) -> list[int] | None:
    """File bands that reach the model, for choosing dates (None: all of them).

    A file band the model never reads (PASTIS S1's VV/VH ratio) must not make an
    acquisition dirty nor move the medoid-like pick (docs/decisions.md D21).
    """
    if spec.transform is not None:  # a transform may read every file band
        return None
    used = sorted(set(spec.model_band_index))
    return None if len(used) == len(spec.bands) else used


def has_measurement(x: np.ndarray, invalid: np.ndarray | None, spec: ModalitySpec) -> bool:
    """Whether a stored ``(T, C, H, W)`` series holds one measured value the model reads.

    False for a series without acquisitions, one whose every pixel is flagged in
    ``invalid`` ``(T, H, W)``, or one whose model bands hold no finite value once the values
    that are no measurement are NaN (:func:`missing_as_nan`). The model sees zeros for such a
    series; the converter counts them (docs/decisions.md D24).
    """
    if x.shape[0] == 0:
        return False
    if invalid is not None and bool(np.all(invalid)):
        return False
    x = missing_as_nan(x, spec)
    if x.dtype.kind != "f":
        return True
    bands = date_choice_bands(spec)
    v = x if bands is None else x[:, bands]
    ok = np.isfinite(v)
    if invalid is not None:
        ok &= ~invalid[:, None]
    return bool(ok.any())


def scale(x: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """Cast to float32 and apply the modality's scaling: values that are no measurement
    become NaN (:func:`missing_as_nan`), then optional ``ln(max(x, 1e-10))``, then
    ``/ divisor``."""
    x = np.asarray(missing_as_nan(x, spec), dtype=np.float32)
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
