"""The synthetic world behind the demo suite: small, deterministic, with known structure.

The demo writers (one per raw format) draw their pixels from here, so every dataset of the
demo suite carries the same planted, learnable structure (docs/demo.md says why each part is
there, with measurements):

1. **Planted band groups.** Each sensor's bands are partitioned into *latent groups*
   (:data:`LATENT_GROUPS`): S2 {B2,B3,B4,B5} / {B6,B7,B8,B8A} / {B11,B12}; aerial {NIR} /
   {R,G,B}; S1 {VV} / {VH}; SPOT {R,G,B}; DEM {DSM,DTM}. A pixel's value in a band is an
   affine function of its group's *level* plus small independent noise, so bands within a
   group are strongly correlated and bands of different groups are not. These are the
   normalization groups of IGNF/MAESTRO's dataset configs (``norm_bands``) that the
   band-group analysis must recover.
2. **Class signatures with phenology.** Each class has, per latent group, a base level and
   a seasonal amplitude that peaks at a class-specific day of year (:class:`Phenology`).
   Classes come in *twins*: both twins share base and amplitude and differ only by the
   peak date, so one acquisition cannot tell them apart while the time series can.
3. **Spectral shape inside a group.** Each class also bends the gains of the bands inside a
   group (a static and a seasonal part, zero mean in the group, :data:`SPECTRAL_STD`): the
   shape survives the patch-group-wise normalization of the reconstruction targets, which
   removes a patch's level, and it changes with the season (a masked date is predictable
   from the class and its neighbours in time).
4. **Acquisition gains.** Every (date, latent group) of an optical acquisition is scaled by
   a log-normal gain (:func:`acquisition_gains`): absolute levels vary from date to date
   while the shape inside a group does not. Class levels are close to each other
   (:data:`BASE_RANGE`), so the class is mostly in the shape, a ratio that a linear model
   of the raw values reads poorly and that MAESTRO's normalized targets isolate.
5. **Parcels.** Labels are spatially coherent: a Voronoi tessellation of the tile at the
   finest resolution, one class per cell (:func:`parcels`). Coarser modalities see the
   area-weighted class fractions of each of their pixels (:func:`class_fractions`).
6. **Rows** (very-high-resolution images): class-specific periodic rows whose phase is one
   per parcel (:class:`Texture`), so a masked patch continues its visible neighbours.
7. **Within-group spatial fields.** A smooth random field per latent group and date adds
   spatial variation that all bands of the group share (on top of the class signal).
8. **Clouds** (S2): a smooth cloud field covers part of some dates; cloudy pixels are bright
   in every band and their cloud probability (0-100) is non-zero (:func:`cloud_field`).
9. **Speckle** (S1): backscatter is multiplied by Gamma(L, 1/L) noise (:func:`speckle`); S1
   phenologies share their peak dates with S2's (``like``), so the two co-vary.

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


#: Std of the class-specific spectral shape inside a band group (relative band gain): its
#: static part and its seasonal part (scaled by the class's seasonal bump).
SPECTRAL_STD = (0.05, 0.12)
#: The same for the few bands of very-high-resolution sensors (aerial, SPOT), whose main
#: class cue is their rows (:class:`Texture`).
VHR_SPECTRAL_STD = (0.03, 0.06)
#: Spectral-shape draws are clipped at this many standard deviations.
SPECTRAL_CLIP = 2.0
#: Ranges of the class base levels and seasonal amplitudes of the latent groups. Narrow
#: enough that levels alone, under the acquisition gains, tell classes apart only roughly.
BASE_RANGE = (0.25, 0.35)
AMPLITUDE_RANGE = (-0.05, 0.05)
#: Log-scale of the acquisition gain of a band group on one date (illumination, haze) and the
#: range of its standard-normal draw: gains lie in exp(0.7 * [-2, 0.35]) = 0.25..1.28, mostly
#: darkening, so reflectances stay below 1 and clouds stay the brightest pixels.
ACQUISITION_GAIN_STD = 0.7
ACQUISITION_GAIN_RANGE = (-2.0, 0.35)


def acquisition_gains(
    shape: tuple[int, ...], rng: np.random.Generator, std: float = ACQUISITION_GAIN_STD
) -> np.ndarray:
    """Multiplicative gains (median ~1) of the band groups of each acquisition.

    One gain per (date, latent group) scales every band of the group alike: absolute levels
    then vary from date to date, while the spectral shape inside a group (what patch-group-wise
    target normalization keeps) does not.
    """
    return np.exp(std * np.clip(rng.standard_normal(shape), *ACQUISITION_GAIN_RANGE))


@dataclass(frozen=True)
class Phenology:
    """Level of each latent group over the year for one class, and its spectral shape.

    ``level(doy) = base + amplitude * bump(doy)`` with the seasonal
    ``bump(doy) = exp(-0.5 * (circular_distance(doy, peak) / width)^2)``. ``spectral`` holds,
    per band of the sensor (:data:`LATENT_GROUPS` order), a static and a seasonal deviation of
    the band's gain from its group's: ``spectral_at(doy) = spectral[0] + spectral[1] * bump``.
    Deviations sum to zero inside each group, so the group level is unchanged; what they add
    is a class-specific band pattern *inside* a group, which survives the patch-group-wise
    normalization of the reconstruction targets (the signal MAESTRO's objective rests on).
    """

    base: np.ndarray  # (G,) in [0, 1]
    amplitude: np.ndarray  # (G,) signed seasonal change
    peak_doy: float
    width_days: float
    spectral: np.ndarray | None = None  # (2, B) static and seasonal band-gain deviations
    sensor: str | None = None  # the LATENT_GROUPS family ``spectral`` is indexed by

    def bump(self, doy: np.ndarray | float) -> np.ndarray:
        """Seasonal weight in [0, 1] at the given day(s) of year: shape of ``doy``."""
        doy = np.asarray(doy, dtype=np.float64)
        d = np.abs(doy - self.peak_doy)
        d = np.minimum(d, 365.25 - d)
        return np.exp(-0.5 * (d / self.width_days) ** 2)

    def level(self, doy: np.ndarray | float) -> np.ndarray:
        """Group levels at the given day(s) of year: ``(..., G)``."""
        return self.base + self.amplitude * self.bump(doy)[..., None]

    def spectral_at(
        self, doy: np.ndarray | float, bands: list[str] | tuple[str, ...]
    ) -> np.ndarray:
        """Band-gain deviations of ``bands`` at the given day(s): ``(..., C)`` (0 when none)."""
        bump = self.bump(doy)[..., None]
        if self.spectral is None or self.sensor is None:
            return np.zeros((*bump.shape[:-1], len(bands)))
        order = list(LATENT_GROUPS[self.sensor])
        idx = [order.index(b) if b in order else -1 for b in bands]
        s = np.concatenate([self.spectral, np.zeros((2, 1))], axis=1)[:, idx]  # -1 -> 0
        return s[0] + s[1] * bump


def class_phenologies(
    n_classes: int,
    n_groups: int,
    rng: np.random.Generator,
    sensor: str | None = None,
    spectral_std: tuple[float, float] = SPECTRAL_STD,
    like: list[Phenology] | None = None,
) -> list[Phenology]:
    """Signatures of ``n_classes`` classes over ``n_groups`` latent groups.

    Classes ``2k`` and ``2k+1`` are twins: same base, amplitude and spectral shape, peaks ~120
    days apart. With ``sensor`` each class also gets a spectral shape inside the sensor's
    groups (std ``spectral_std``). ``like`` (another sensor's signatures) lends its peaks and
    widths, so that this sensor's seasonal changes co-vary with that one's (S1 with S2).
    """
    groups = np.array(list(LATENT_GROUPS[sensor].values())) if sensor else None
    out: list[Phenology] = []
    for k in range(n_classes):
        if k % 2 == 0:
            base = rng.uniform(*BASE_RANGE, n_groups)
            amplitude = rng.uniform(*AMPLITUDE_RANGE, n_groups)
            peak = float(rng.uniform(0, 365.25))
            width = float(rng.uniform(25, 50))
            spectral = None
            if groups is not None:
                spectral = np.clip(
                    rng.normal(0.0, 1.0, (2, len(groups))), -SPECTRAL_CLIP, SPECTRAL_CLIP
                )
                spectral *= np.asarray(spectral_std, dtype=np.float64)[:, None]
                for g in np.unique(groups):  # zero mean inside each group
                    spectral[:, groups == g] -= spectral[:, groups == g].mean(1, keepdims=True)
        else:
            twin = out[k - 1]
            base, amplitude, width = twin.base, twin.amplitude, twin.width_days
            spectral = twin.spectral
            peak = (twin.peak_doy + 120.0) % 365.25
        if like is not None:
            peak, width = like[k].peak_doy, like[k].width_days
        out.append(Phenology(base, amplitude, peak, width, spectral, sensor))
    return out


def class_spectra(
    phen: list[Phenology], doy: float, bands: list[str] | tuple[str, ...]
) -> np.ndarray:
    """``(K, C)`` band-gain deviation of every class for ``bands`` at one day of year."""
    return np.stack([p.spectral_at(doy, bands) for p in phen])


def class_levels(phen: list[Phenology], doy: float) -> np.ndarray:
    """``(K, G)`` level of every class and latent group at one day of year."""
    return np.stack([p.level(doy) for p in phen])


def parcels(
    shape: tuple[int, int],
    n_cells: int,
    class_probs: np.ndarray,
    rng: np.random.Generator,
    return_cells: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A ``(H, W)`` int map of Voronoi parcels, each labelled with a class drawn from
    ``class_probs``.

    With ``return_cells`` also the ``(H, W)`` parcel index map (one id per Voronoi cell).
    """
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
    labels = classes[nearest].reshape(h, w)
    return (labels, nearest.reshape(h, w)) if return_cells else labels


@dataclass(frozen=True)
class Texture:
    """Class-specific row texture of very-high-resolution images (crop rows, plantations).

    Class ``k`` has rows of period ``period_m[k]`` metres at angle ``angle[k]`` (radians),
    modulating each latent group's level by ``1 + amplitude[k, g] * cos(...)``. The phase is
    one per parcel, so the rows run on across patch borders inside a parcel: a masked patch is
    predictable from its visible neighbours, and rows are a cue to the class that a linear
    function of the pixels cannot read (it depends on the phase). Twins share their rows.
    """

    period_m: np.ndarray  # (K,)
    angle: np.ndarray  # (K,)
    amplitude: np.ndarray  # (K, G)

    @staticmethod
    def draw(n_classes: int, n_groups: int, rng: np.random.Generator) -> Texture:
        """Rows of 2.5-8 m at any angle, amplitudes up to 0.3 of the level, twins alike."""
        half = (n_classes + 1) // 2
        period = np.repeat(rng.uniform(2.5, 8.0, half), 2)[:n_classes]
        angle = np.repeat(rng.uniform(0, np.pi, half), 2)[:n_classes]
        amplitude = np.repeat(rng.uniform(-0.3, 0.3, (half, n_groups)), 2, axis=0)[:n_classes]
        return Texture(period, angle, amplitude)

    def render(
        self, labels: np.ndarray, cells: np.ndarray, res_m: float, rng: np.random.Generator
    ) -> np.ndarray:
        """``(G, H, W)`` multiplicative modulation of the group levels on a class map.

        ``labels`` and ``cells`` are ``(H, W)`` class and parcel ids at ``res_m`` metres.
        """
        h, w = labels.shape
        yy, xx = np.mgrid[0:h, 0:w] * res_m
        phase = rng.uniform(0, 2 * np.pi, int(cells.max()) + 1)[cells]
        theta = self.angle[labels]
        rows = np.cos(
            2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / self.period_m[labels] + phase
        )
        return 1.0 + np.moveaxis(self.amplitude[labels], -1, 0) * rows[None]


def area_weights(n_fine: int, n_coarse: int) -> np.ndarray:
    """``(n_coarse, n_fine)`` share of each fine pixel in each coarse pixel (rows sum to 1)."""
    f = np.arange(n_fine + 1) / n_fine
    c = np.arange(n_coarse + 1) / n_coarse
    overlap = np.minimum(c[1:, None], f[None, 1:]) - np.maximum(c[:-1, None], f[None, :-1])
    return np.clip(overlap, 0.0, None) * n_coarse


def class_fractions(
    label_map: np.ndarray, n_classes: int, out_shape: tuple[int, int]
) -> np.ndarray:
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
    spectral: np.ndarray | None = None,
    texture: np.ndarray | None = None,
    group_gain: np.ndarray | None = None,
) -> np.ndarray:
    """Reflectance-like ``(C, h, w)`` values in ~[0, 1] for bands mapped to latent groups.

    Band ``c`` of group ``g``: ``0.02 + (gain_c + dev_c) * level_g + noise``, where ``dev_c``
    is the area-weighted class spectral deviation (:meth:`Phenology.spectral_at`).

    Args:
        fractions: ``(K, h, w)`` class area fractions per pixel.
        levels: ``(K, G)`` class levels per latent group at this date.
        band_groups: latent group index of each of the C output bands.
        field_std: std of the shared within-group spatial field.
        noise_std: std of the independent per-band noise.
        rng: random generator.
        field_scale_px: correlation length of the within-group field, in output pixels.
        spectral: ``(K, C)`` class band-gain deviations at this date (:func:`class_spectra`).
        texture: ``(G, h, w)`` multiplicative modulation of the group levels
            (:meth:`Texture.render`).
        group_gain: ``(G,)`` acquisition gain of each group (:func:`acquisition_gains`).
    """
    _, h, w = fractions.shape  # (K, h, w)
    group_level = np.einsum("khw,kg->ghw", fractions, levels)  # (G, h, w)
    if texture is not None:
        group_level = group_level * texture
    n_groups = levels.shape[1]
    fields = np.stack([smooth_field((h, w), field_scale_px, rng) for _ in range(n_groups)])
    group_level = group_level + field_std * fields
    if group_gain is not None:
        group_level = group_level * np.asarray(group_gain)[:, None, None]
    dev = np.einsum("khw,kc->chw", fractions, spectral) if spectral is not None else None
    out = np.empty((len(band_groups), h, w), dtype=np.float64)
    for c, g in enumerate(band_groups):
        # bands of one group share the level, each with its own gain and offset
        gain = 0.8 + 0.1 * c / max(len(band_groups) - 1, 1)
        if dev is not None:
            gain = gain + dev[c]
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
