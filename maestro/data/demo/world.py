"""The synthetic world behind the demo suite: small, deterministic, with known structure.

The demo writers (one per raw format) draw their pixels from here, so every dataset of the
demo suite carries the same planted, learnable structure:

1. **Planted band groups.** Each sensor's bands are partitioned into *latent groups*
   (:data:`LATENT_GROUPS`): S2 {B2,B3,B4,B5} / {B6,B7,B8,B8A} / {B11,B12}; aerial {NIR} /
   {R,G,B}; S1 {VV} / {VH}; SPOT {R,G,B}; DEM {DSM,DTM}. A pixel's value in a band is an
   affine function of its group's *level* plus small independent noise, so bands within a
   group are strongly correlated and bands of different groups are not. These are the
   groups of MAESTRO_SPEC §3 that the band-group analysis must recover.
2. **Class signatures with phenology.** Each class has, per latent group, a base level and
   a seasonal amplitude that peaks at a class-specific day of year (:class:`Phenology`).
   Classes come in *twins*: both twins share base and amplitude and differ only by the
   peak date, so one acquisition cannot tell them apart while the time series can.
3. **Parcels.** Labels are spatially coherent: a Voronoi tessellation of the tile at the
   finest resolution, one class per cell (:func:`parcels`). Coarser modalities see the
   area-weighted class fractions of each of their pixels (:func:`class_fractions`).
4. **Within-group spatial fields.** A smooth random field per latent group and date adds
   spatial variation that all bands of the group share (on top of the class signal).
5. **Clouds** (S2): a smooth cloud field covers part of some dates; cloudy pixels are bright
   in every band and their cloud probability (0-100) is non-zero (:func:`cloud_field`).
6. **Speckle** (S1): backscatter is multiplied by Gamma(L, 1/L) noise (:func:`speckle`).

Everything is a pure function of a ``numpy.random.Generator``; sizes and counts come from
the caller (the demo config), never from constants here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Latent group index of each band, per sensor family (the planted band groups).
LATENT_GROUPS: dict[str, dict[str, int]] = {
    "s2": {
        "B2": 0, "B3": 0, "B4": 0, "B5": 0,
        "B6": 1, "B7": 1, "B8": 1, "B8A": 1,
        "B11": 2, "B12": 2,
    },
    "aerial": {"R": 0, "G": 0, "B": 0, "NIR": 1},
    "spot": {"R": 0, "G": 0, "B": 0},
    "s1": {"VV": 0, "VH": 1},
    "dem": {"DSM": 0, "DTM": 0},
}  # fmt: skip


def planted_groups(sensor: str) -> list[list[str]]:
    """The planted band groups of a sensor family, as lists of band names."""
    table = LATENT_GROUPS[sensor]
    n = max(table.values()) + 1
    return [[b for b, g in table.items() if g == k] for k in range(n)]


@dataclass(frozen=True)
class Phenology:
    """Level of each latent group over the year for one class.

    ``level(doy) = base + amplitude * exp(-0.5 * (circular_distance(doy, peak) / width)^2)``.
    """

    base: np.ndarray  # (G,) in [0, 1]
    amplitude: np.ndarray  # (G,) signed seasonal change
    peak_doy: float
    width_days: float

    def level(self, doy: np.ndarray | float) -> np.ndarray:
        """Group levels at the given day(s) of year: ``(..., G)``."""
        doy = np.asarray(doy, dtype=np.float64)[..., None]
        d = np.abs(doy - self.peak_doy)
        d = np.minimum(d, 365.25 - d)
        bump = np.exp(-0.5 * (d / self.width_days) ** 2)
        return self.base + self.amplitude * bump


def class_phenologies(n_classes: int, n_groups: int, rng: np.random.Generator) -> list[Phenology]:
    """Signatures of ``n_classes`` classes over ``n_groups`` latent groups.

    Classes ``2k`` and ``2k+1`` are twins: same base and amplitude, peaks ~120 days apart.
    """
    out: list[Phenology] = []
    for k in range(n_classes):
        if k % 2 == 0:
            base = rng.uniform(0.1, 0.6, n_groups)
            amplitude = rng.uniform(-0.25, 0.35, n_groups)
            peak = float(rng.uniform(0, 365.25))
            width = float(rng.uniform(25, 50))
        else:
            twin = out[k - 1]
            base, amplitude, width = twin.base, twin.amplitude, twin.width_days
            peak = (twin.peak_doy + 120.0) % 365.25
        out.append(Phenology(base, amplitude, peak, width))
    return out


def class_levels(phen: list[Phenology], doy: float) -> np.ndarray:
    """``(K, G)`` level of every class and latent group at one day of year."""
    return np.stack([p.level(doy) for p in phen])


def parcels(
    shape: tuple[int, int],
    n_cells: int,
    class_probs: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """A ``(H, W)`` int map of Voronoi parcels, each labelled with a class drawn from ``class_probs``."""
    h, w = shape
    seeds = rng.uniform(0, 1, size=(n_cells, 2)) * np.array([h, w])
    classes = rng.choice(len(class_probs), size=n_cells, p=class_probs / class_probs.sum())
    yy, xx = np.mgrid[0:h, 0:w]
    grid = np.stack([yy.ravel() + 0.5, xx.ravel() + 0.5], axis=1)
    # nearest seed per pixel, chunked to bound memory on large tiles
    nearest = np.empty(h * w, dtype=np.int64)
    step = 65536
    for i in range(0, h * w, step):
        d2 = ((grid[i : i + step, None, :] - seeds[None]) ** 2).sum(-1)
        nearest[i : i + step] = d2.argmin(1)
    return classes[nearest].reshape(h, w)


def area_weights(n_fine: int, n_coarse: int) -> np.ndarray:
    """``(n_coarse, n_fine)`` share of each fine pixel in each coarse pixel (rows sum to 1)."""
    f = np.arange(n_fine + 1) / n_fine
    c = np.arange(n_coarse + 1) / n_coarse
    overlap = np.minimum(c[1:, None], f[None, 1:]) - np.maximum(c[:-1, None], f[None, :-1])
    return np.clip(overlap, 0.0, None) * n_coarse


def class_fractions(label_map: np.ndarray, n_classes: int, out_shape: tuple[int, int]) -> np.ndarray:
    """Area fraction of each class in each output pixel: ``(K, h, w)`` float32.

    Block means when ``label_map`` ``(H, W)`` is an integer multiple of ``out_shape``; any
    other ratio is area-weighted (fine pixels split across coarse pixel edges).
    """
    h, w = out_shape
    fy, fx = label_map.shape[0] // h, label_map.shape[1] // w
    onehot = np.eye(n_classes, dtype=np.float32)[label_map]  # (H, W, K)
    if fy * h == label_map.shape[0] and fx * w == label_map.shape[1]:
        blocks = onehot.reshape(h, fy, w, fx, n_classes).mean(axis=(1, 3))
        return np.ascontiguousarray(np.moveaxis(blocks, -1, 0))
    wy = area_weights(label_map.shape[0], h).astype(np.float32)
    wx = area_weights(label_map.shape[1], w).astype(np.float32)
    return np.einsum("yh,hwk,xw->kyx", wy, onehot, wx, optimize=True)


def upsample_labels(label_map: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of a class map to ``out_shape``."""
    h, w = out_shape
    iy = (np.arange(h) * label_map.shape[0] // h).clip(0, label_map.shape[0] - 1)
    ix = (np.arange(w) * label_map.shape[1] // w).clip(0, label_map.shape[1] - 1)
    return label_map[np.ix_(iy, ix)]


def smooth_field(shape: tuple[int, int], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``scale_px``."""
    noise = rng.standard_normal(shape)
    field = ndimage.gaussian_filter(noise, sigma=max(scale_px, 0.5), mode="wrap")
    std = field.std()
    return (field - field.mean()) / (std if std > 0 else 1.0)


def render_bands(
    fractions: np.ndarray,
    levels: np.ndarray,
    band_groups: list[int],
    field_std: float,
    noise_std: float,
    rng: np.random.Generator,
    field_scale_px: float = 3.0,
) -> np.ndarray:
    """Reflectance-like ``(C, h, w)`` values in ~[0, 1] for bands mapped to latent groups.

    Args:
        fractions: ``(K, h, w)`` class area fractions per pixel.
        levels: ``(K, G)`` class levels per latent group at this date.
        band_groups: latent group index of each of the C output bands.
        field_std: std of the shared within-group spatial field.
        noise_std: std of the independent per-band noise.
        rng: random generator.
        field_scale_px: correlation length of the within-group field, in output pixels.
    """
    k, h, w = fractions.shape
    group_level = np.einsum("khw,kg->ghw", fractions, levels)  # (G, h, w)
    n_groups = levels.shape[1]
    fields = np.stack([smooth_field((h, w), field_scale_px, rng) for _ in range(n_groups)])
    group_level = group_level + field_std * fields
    out = np.empty((len(band_groups), h, w), dtype=np.float64)
    for c, g in enumerate(band_groups):
        # bands of one group share the level, each with its own gain and offset
        gain = 0.8 + 0.1 * c / max(len(band_groups) - 1, 1)
        out[c] = 0.02 + gain * group_level[g] + noise_std * rng.standard_normal((h, w))
    return out


def cloud_field(
    shape: tuple[int, int], coverage: float, rng: np.random.Generator, scale_px: float = 2.0
) -> np.ndarray:
    """Cloud probability in [0, 100] over ``shape``; about ``coverage`` of the pixels are > 0."""
    if coverage <= 0:
        return np.zeros(shape, dtype=np.float32)
    f = smooth_field(shape, scale_px, rng)
    thresh = np.quantile(f, 1.0 - min(coverage, 1.0))
    prob = np.clip((f - thresh) * 60.0 + 20.0, 0.0, 100.0)
    prob[f < thresh] = 0.0
    return prob.astype(np.float32)


def speckle(x: np.ndarray, looks: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative SAR speckle: ``x * Gamma(looks, 1/looks)``."""
    return x * rng.gamma(shape=looks, scale=1.0 / looks, size=x.shape)


def acquisition_days(n: int, rng: np.random.Generator, jitter_days: float = 3.0) -> np.ndarray:
    """``n`` sorted, distinct days of year (1..365), roughly regular with jitter."""
    base = np.linspace(1, 365, n, endpoint=False) + 365.0 / (2 * n)
    days = np.clip(np.round(base + rng.uniform(-jitter_days, jitter_days, n)), 1, 365)
    return np.unique(days.astype(np.int64))
