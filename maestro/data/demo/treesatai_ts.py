"""Demo TreeSatAI-TS distribution, in the real on-disk format (that of IGNF/TreeSatAI-Time-Series).

Layout under ``root`` (identical to the real distribution + MAESTRO split CSVs):

- ``aerial/<Genus>_<species>_<k>_<id>_WEFL_NLF.tif``: 4-band uint8 GeoTIFF in file band order
  NIR, G, B, R (``store.modality("aerial").bands``), EPSG:25832, pixel size = aerial
  resolution, tile pixels + 2 px border on each side (304 px at 0.2 m for a 60 m tile),
  no nodata, striped (not tiled), pixel interleaved, photometric RGB + alpha extra sample.
- ``sentinel-ts/<stem>_<year>.h5``: root datasets ``sen-2-data`` (T,10,h,w) float32 integer
  reflectance x1e4, ``sen-2-masks`` (T,2,h,w) float32 snow / cloud probability 0..100,
  ``sen-1-{asc,des}-data`` (T,2,h,w) float32 linear sigma0 VV, VH (a few NaNs), and
  ``sen-{2,1-asc,1-des}-products`` (T,) variable-length UTF-8 product names (date in token
  [-5]). No attributes, contiguous layout. h = w = S2 pixels of the tile.
- ``train.csv``, ``val.csv``, ``test.csv``: ``aerial_name,sen_name,aerial_date,`` + the genus
  columns (``store.label.names``), area fractions with 5 decimals summing to 1.

Planted structure (all from :mod:`maestro.data.demo.world`, seeded by ``cfg.seed``):

1. **Forest stands.** Each tile is a Voronoi map of ``cfg.parcels`` stands at aerial
   resolution (border included). Genera have unequal global frequencies (Zipf-like weights
   1/rank^1.2 over a random ranking: some genera are rare); a tile draws a dominant genus
   from them and each stand takes the dominant genus with probability ~0.55, otherwise a
   genus from the global frequencies. The CSV fractions are the genus areas inside the
   centred window that MAESTRO reads, so the multi-label target (fraction > 0.07) varies.
2. **Phenology.** One :func:`world.class_phenologies` per sensor family: optical (the three
   S2 latent groups {B2,B3,B4,B5} / {B6,B7,B8,B8A} / {B11,B12}) and SAR ({VV} / {VH}).
   Twin genera (columns 2k, 2k+1) share their levels and differ by their peak date only.
   The aerial image uses the optical phenology at the aerial date: its {R,G,B} group follows
   the S2 visible group and {NIR} the S2 NIR group.
3. **Aerial texture.** Each genus has a crown size (1.5, 3 or 6 m) and a texture amplitude:
   its group levels are modulated by a smooth random field of that correlation length,
   drawn independently per latent group.
4. **Coarse pixels** (S2, S1) see the area fractions of each genus
   (:func:`world.class_fractions`) plus a smooth within-group field per date; every band is
   an affine function of its group level plus small independent noise, so bands correlate
   strongly within a planted group and weakly across groups.
5. **Clouds** on ``round(cfg.cloudy_fraction * T)`` S2 dates: :func:`world.cloud_field`
   pixels are bright in every band and carry a cloud probability > 0 in mask channel 1,
   exactly there (0 elsewhere). A few winter dates (day <= 59 or >= 335) carry snow
   (mask channel 0): bright in the visible and NIR, dark in the SWIR.
6. **S1**: group levels map to dB (VV around -20..-6 dB, VH 7 dB lower), then to linear
   sigma0 with :func:`world.speckle` (4.5 looks); about a third of the files get NaN on one
   pixel of two consecutive dates, like the real data.

Each tile uses its own generator spawned from ``np.random.default_rng(cfg.seed)``; the same
seed gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import rasterio
from einops import rearrange
from rasterio.transform import Affine
from scipy import ndimage

from maestro.data.dates import to_yyyymmdd
from maestro.data.demo import DemoConfig
from maestro.data.demo import world as W
from maestro.data.demo.treesatai_ts_products import mgrs_tile, s1_product_names, s2_product_names
from maestro.datasets.spec import SPLITS, StoreSpec
from maestro.utils.atomic import atomic_path

#: Pixels of border around the tile in the aerial GeoTIFFs (MAESTRO reads the centred window).
AERIAL_BORDER_PX = 2
#: Candidate years of the tiles (TreeSatAI-TS series start in 2017).
YEARS = (2017, 2018, 2019, 2020)
#: Aerial flights: a summer day of year (June to August).
SUMMER_DOY = (152, 243)
#: Temporal modalities -> HDF5 prefix. Their counts come from ``cfg.acquisitions``.
H5_PREFIX = {"s2": "sen-2", "s1_asc": "sen-1-asc", "s1_des": "sen-1-des"}
#: Species epithets used in the file names, per genus (dominant genus first in the name).
SPECIES = {
    "Abies": ("alba",),
    "Acer": ("pseudoplatanus", "platanoides"),
    "Alnus": ("spec.", "glutinosa"),
    "Betula": ("spec.",),
    "Cleared": ("spec.",),
    "Fagus": ("sylvatica",),
    "Fraxinus": ("excelsior",),
    "Larix": ("decidua", "kaempferi"),
    "Picea": ("abies",),
    "Pinus": ("sylvestris", "nigra", "strobus"),
    "Populus": ("spec.",),
    "Prunus": ("spec.",),
    "Pseudotsuga": ("menziesii",),
    "Quercus": ("robur", "petraea", "rubra"),
    "Tilia": ("spec.",),
}
#: Per optical latent group (visible, NIR, SWIR): reflectance scale, snow reflectance.
OPTICAL_SCALE = np.array([0.35, 1.0, 0.6])
SNOW_REFLECTANCE = np.array([0.85, 0.75, 0.08])
#: S1: dB = offset + DB_SPAN * value for VV, VH.
S1_DB_OFFSET = {"VV": -21.0, "VH": -28.0}
DB_SPAN = 15.0
S1_LOOKS = 4.5
#: The S2 band of each aerial band (its class spectral shape).
AERIAL_AS_S2 = {"B": "B2", "G": "B3", "R": "B4", "NIR": "B8"}
#: Crown sizes (m) of the aerial texture; each genus has one.
CROWN_M = np.array([1.5, 3.0, 6.0])


@dataclass(frozen=True)
class _Signatures:
    """Dataset-level class structure (K genera)."""

    class_probs: np.ndarray  # (K,) global genus frequencies
    optical: list[W.Phenology]  # 3 latent groups (S2; aerial uses groups 0 and 1)
    sar: list[W.Phenology]  # 2 latent groups (VV, VH)
    crown_m: np.ndarray  # (K,) crown size, one of CROWN_M
    texture: np.ndarray  # (K,) texture amplitude
    rows: W.Texture  # class row texture of the aerial image


def _signatures(n_classes: int, rng: np.random.Generator) -> _Signatures:
    ranks = rng.permutation(n_classes)
    weights = 1.0 / (ranks + 1.0) ** 1.2
    n_opt = max(W.LATENT_GROUPS["s2"].values()) + 1
    n_sar = max(W.LATENT_GROUPS["s1"].values()) + 1
    return _Signatures(
        class_probs=weights / weights.sum(),
        optical=(optical := W.class_phenologies(n_classes, n_opt, rng, sensor="s2")),
        sar=W.class_phenologies(n_classes, n_sar, rng, sensor="s1", like=optical),
        crown_m=rng.choice(CROWN_M, size=n_classes),
        texture=rng.uniform(0.05, 0.3, n_classes),
        rows=W.Texture.draw(n_classes, max(W.LATENT_GROUPS["aerial"].values()) + 1, rng),
    )


def _basis_field(shape: tuple[int, int], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """Fast smooth unit-std random field ``(H, W)`` float32 with blobs of ~``scale_px``.

    White noise on a grid of spacing ``scale_px``, smoothed slightly and interpolated with
    smoothstep weights along each axis (cheap at aerial resolution, no BLAS).
    """
    s = max(scale_px, 1.0)
    grid = [int(np.ceil(n / s)) + 2 for n in shape]
    out = ndimage.gaussian_filter(rng.standard_normal(grid), 0.6, mode="wrap").astype(np.float32)
    for axis, n in enumerate(shape):
        pos = (np.arange(n) + 0.5) / s
        i0 = np.floor(pos).astype(np.int64)
        t = (pos - i0).astype(np.float32)
        t = t * t * (3 - 2 * t)
        t = t[:, None] if axis == 0 else t[None, :]
        out = np.take(out, i0, axis=axis) * (1 - t) + np.take(out, i0 + 1, axis=axis) * t
    return (out - out.mean()) / (out.std() or 1.0)


def _fields(shape: tuple[int, ...], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """``(..., h, w)`` stack of independent :func:`world.smooth_field` draws, in one pass."""
    noise = rng.standard_normal(shape)
    sigma = (0.0,) * (len(shape) - 2) + (max(scale_px, 0.5),) * 2
    f = ndimage.gaussian_filter(noise, sigma=sigma, mode="wrap")
    f = f - f.mean(axis=(-2, -1), keepdims=True)
    std = f.std(axis=(-2, -1), keepdims=True)
    return f / np.where(std > 0, std, 1.0)


def _render_series(
    fractions: np.ndarray,
    phen: list[W.Phenology],
    doys: np.ndarray,
    bands: tuple[str, ...] | list[str],
    band_groups: list[int],
    rng: np.random.Generator,
    field_std: float = 0.03,
    noise_std: float = 0.01,
    gain_std: float = 0.0,
) -> np.ndarray:
    """``(T, C, h, w)`` values in ~[0, 1] (:func:`world.render_bands`, vectorised over dates).

    ``fractions`` is ``(K, h, w)``; the levels of date t are ``phen[k].level(doys[t])`` and the
    band-gain deviations ``phen[k].spectral_at(doys[t], bands)``.
    """
    levels = np.stack([p.level(doys) for p in phen], axis=1)  # (T, K, G)
    spectral = np.stack([p.spectral_at(doys, bands) for p in phen], axis=1)  # (T, K, C)
    group = np.einsum("khw,tkg->tghw", fractions, levels)
    group = group + field_std * _fields(group.shape, 2.0, rng)
    if gain_std:
        group = group * W.acquisition_gains(group.shape[:2], rng, gain_std)[..., None, None]
    gains = 0.8 + 0.1 * np.arange(len(band_groups)) / max(len(band_groups) - 1, 1)
    gains = gains[None, :, None, None] + np.einsum("khw,tkc->tchw", fractions, spectral)
    out = 0.02 + gains * group[:, band_groups]
    return out + noise_std * rng.standard_normal(out.shape)


def _acquisition_days(n: int, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sorted days of year; distinct when the year has room for them."""
    if n <= n_days:
        return np.sort(rng.choice(n_days, size=n, replace=False) + 1)
    return np.sort(rng.integers(1, n_days + 1, size=n))


def _coarse_fractions(inner: np.ndarray, n_classes: int, px: int) -> np.ndarray:
    """``(K, px, px)`` class fractions of the centred label window on a ``px`` grid."""
    if inner.shape[0] % px:
        f = -(-inner.shape[0] // px)
        inner = W.upsample_labels(inner, (px * f, px * f))
    return W.class_fractions(inner, n_classes, (px, px))


@dataclass
class _Tile:
    aerial_name: str
    sen_name: str
    aerial_date: str
    easting: float  # west edge of the read window
    northing: float  # north edge of the read window
    units: np.ndarray  # (K,) fractions in 1e-5 units, summing to 100000
    aerial: np.ndarray  # (4, S, S) uint8, S = tile pixels + 2 * border
    h5: dict[str, np.ndarray | list[str]]


def _fraction_units(counts: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of pixel counts to 1e-5 units summing to exactly 1e5."""
    exact = counts * 100_000 / counts.sum()
    units = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - units), kind="stable")
    units[order[: 100_000 - units.sum()]] += 1
    return units


def _render_aerial(
    labels: np.ndarray,
    cells: np.ndarray,
    sig: _Signatures,
    doy: int,
    store: StoreSpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(C, S, S)`` uint8 aerial image of a label map ``(S, S)`` (parcel ids ``cells``)."""
    spec = store.modality("aerial")
    res = spec.resolution_m
    # aerial latent groups {R,G,B}=0 and {NIR}=1 follow the S2 groups visible=0 and NIR=1
    n_groups = max(W.LATENT_GROUPS["aerial"].values()) + 1
    levels = W.class_levels(sig.optical, doy)[:, :n_groups] * OPTICAL_SCALE[:n_groups]
    group = rearrange(levels.astype(np.float32)[labels], "h w g -> g h w")
    texture = np.zeros_like(group)
    crown = sig.crown_m[labels]
    for size_m in np.unique(crown):
        inside = crown == size_m
        for g in range(group.shape[0]):
            texture[g][inside] = _basis_field(labels.shape, size_m / res, rng)[inside]
    group = group * (1.0 + sig.texture.astype(np.float32)[labels] * texture)
    group = group * sig.rows.render(labels, cells, res, rng).astype(np.float32)
    group = group * W.acquisition_gains((len(group), 1, 1), rng).astype(np.float32)
    group += 0.04 * np.stack([_basis_field(labels.shape, 4.0 / res, rng) for _ in group])
    band_groups = [W.LATENT_GROUPS["aerial"][b] for b in spec.bands]
    gains = 0.8 + 0.1 * np.arange(len(band_groups), dtype=np.float32) / max(len(band_groups) - 1, 1)
    # the class spectral shape of the S2 bands at the aerial wavelengths
    dev = W.class_spectra(sig.optical, doy, [AERIAL_AS_S2[b] for b in spec.bands])  # (K, C)
    gains = gains[:, None, None] + rearrange(dev.astype(np.float32)[labels], "h w c -> c h w")
    values = 0.02 + gains * group[band_groups]
    values += 0.015 * rng.standard_normal(values.shape, dtype=np.float32)
    return np.clip(np.rint(25.0 + 230.0 * values), 0, 255).astype(np.uint8)


def _render_s2(
    fr: np.ndarray, sig: _Signatures, doys: np.ndarray, cfg: DemoConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """S2 ``(T, 10, h, w)`` reflectance x1e4 and ``(T, 2, h, w)`` snow/cloud probability."""
    bands = list(W.LATENT_GROUPS["s2"])
    band_groups = list(W.LATENT_GROUPS["s2"].values())
    refl = _render_series(
        fr, sig.optical, doys, bands, band_groups, rng, gain_std=W.ACQUISITION_GAIN_STD
    )
    refl *= OPTICAL_SCALE[band_groups][None, :, None, None]
    n_t, _, h, w = refl.shape
    masks = np.zeros((n_t, 2, h, w), dtype=np.float32)
    cloudy = rng.choice(n_t, size=round(cfg.cloudy_fraction * n_t), replace=False)
    for t in cloudy:
        prob = np.rint(W.cloud_field((h, w), float(rng.uniform(0.15, 1.0)), rng))
        alpha = np.where(prob > 0, 0.6 + 0.4 * prob / 100.0, 0.0)
        bright = rng.uniform(0.7, 0.95) + 0.02 * rng.standard_normal((refl.shape[1], 1, 1))
        refl[t] = (1 - alpha) * refl[t] + alpha * bright
        masks[t, 1] = prob
    cloudy_set = {int(t) for t in cloudy}
    winter = [t for t in range(n_t) if (doys[t] <= 59 or doys[t] >= 335) and t not in cloudy_set]
    for t in winter:
        if rng.uniform() < 0.15:
            prob = np.rint(W.cloud_field((h, w), float(rng.uniform(0.3, 1.0)), rng))
            alpha = np.where(prob > 0, 0.5 + 0.5 * prob / 100.0, 0.0)
            snow = SNOW_REFLECTANCE[band_groups][:, None, None]
            refl[t] = (1 - alpha) * refl[t] + alpha * snow
            masks[t, 0] = prob
    return np.clip(np.rint(refl * 1e4), 1, 20000).astype(np.float32), masks


def _render_s1(
    fr: np.ndarray,
    sig: _Signatures,
    doys: np.ndarray,
    store: StoreSpec,
    mod: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """S1 ``(T, 2, h, w)`` float32 linear sigma0 (VV, VH) with speckle and a few NaNs."""
    bands = store.modality(mod).bands
    groups = [W.LATENT_GROUPS["s1"][b] for b in bands]
    values = _render_series(fr, sig.sar, doys, bands, groups, rng)
    offsets = np.array([S1_DB_OFFSET[b] for b in bands])[None, :, None, None]
    sigma0 = W.speckle(10.0 ** ((offsets + DB_SPAN * values) / 10.0), S1_LOOKS, rng)
    sigma0 = sigma0.astype(np.float32)
    n_t, _, h, w = sigma0.shape
    if n_t >= 2 and rng.uniform() < 1 / 3:
        t, y, x = int(rng.integers(n_t - 1)), int(rng.integers(h)), int(rng.integers(w))
        sigma0[t : t + 2, :, y, x] = np.nan
    return sigma0


def _tile(
    store: StoreSpec, cfg: DemoConfig, sig: _Signatures, tile_id: int, rng: np.random.Generator
) -> _Tile:
    names = store.label.names
    aerial = store.modality("aerial")
    px = aerial.pixels(store.tile_m)
    size = px + 2 * AERIAL_BORDER_PX
    year = int(rng.choice(YEARS))
    n_days = 366 if year % 4 == 0 else 365
    aerial_doy = int(rng.integers(SUMMER_DOY[0], SUMMER_DOY[1] + 1))
    easting = 10.0 * int(rng.integers(32_000, 68_000))
    northing = 10.0 * int(rng.integers(535_000, 603_000))

    dominant = rng.choice(len(names), p=sig.class_probs)
    probs = 0.45 * sig.class_probs + 0.55 * np.eye(len(names))[dominant]
    labels, cells = W.parcels((size, size), cfg.parcels, probs, rng, return_cells=True)
    b = AERIAL_BORDER_PX
    inner = labels[b : b + px, b : b + px]
    units = _fraction_units(np.bincount(inner.ravel(), minlength=len(names)))

    image = _render_aerial(labels, cells, sig, aerial_doy, store, rng)
    h5: dict[str, np.ndarray | list[str]] = {}
    tile = mgrs_tile(easting, northing)
    coarse: dict[int, np.ndarray] = {}  # pixels per side -> (K, px, px) fractions
    for mod, prefix in H5_PREFIX.items():
        doys = _acquisition_days(int(cfg.acquisitions[mod]), n_days, rng)
        px_mod = store.modality(mod).pixels(store.tile_m)
        if px_mod not in coarse:
            coarse[px_mod] = _coarse_fractions(inner, len(names), px_mod)
        fr = coarse[px_mod]
        if mod == "s2":
            h5[f"{prefix}-data"], h5[f"{prefix}-masks"] = _render_s2(fr, sig, doys, cfg, rng)
            h5[f"{prefix}-products"] = s2_product_names(year, doys, tile, rng)
        else:
            h5[f"{prefix}-data"] = _render_s1(fr, sig, doys, store, mod, rng)
            hour = 17 if mod == "s1_asc" else 5
            h5[f"{prefix}-products"] = s1_product_names(year, doys, hour, rng)

    genus = names[int(np.argmax(units))]
    species = str(rng.choice(SPECIES.get(genus, ("spec.",))))
    stem = f"{genus}_{species}_{int(rng.integers(1, 10))}_{tile_id}_WEFL_NLF"
    return _Tile(
        aerial_name=f"{stem}.tif",
        sen_name=f"{stem}_{year}.h5",
        aerial_date=to_yyyymmdd(year, aerial_doy),
        easting=easting,
        northing=northing,
        units=units,
        aerial=image,
        h5=h5,
    )


def _write_aerial(path: Path, tile: _Tile, store: StoreSpec) -> None:
    res = store.modality("aerial").resolution_m
    border = AERIAL_BORDER_PX * res
    count, height, width = tile.aerial.shape
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": count,
        "height": height,
        "width": width,
        "crs": store.crs,
        "transform": Affine(res, 0.0, tile.easting - border, 0.0, -res, tile.northing + border),
        "nodata": None,
        "tiled": False,
        "interleave": "pixel",
        "photometric": "RGB",
        "alpha": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(tile.aerial)


def _write_h5(path: Path, tile: _Tile) -> None:
    with h5py.File(path, "w", libver="earliest") as f:
        for key in sorted(tile.h5):
            value = tile.h5[key]
            if isinstance(value, list):
                data = np.array(value, dtype=object)
                f.create_dataset(
                    key, data=data, dtype=h5py.string_dtype("utf-8"), track_times=False
                )
            else:
                f.create_dataset(key, data=value, track_times=False)


def _fraction_text(units: int) -> str:
    """``72542 -> "0.72542"``, ``0 -> "0.0"``, ``100000 -> "1.0"`` (as in the real CSVs)."""
    text = f"{units / 100_000:.5f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def write(root: Path, store: StoreSpec, cfg: DemoConfig) -> None:
    """Write a demo TreeSatAI-TS distribution under ``root`` (created; must not exist).

    ``cfg.acquisitions`` must give the yearly acquisitions of "s2", "s1_asc" and "s1_des".
    Tiles ``0..n_train-1`` go to train.csv, the next ``n_val`` to val.csv, the rest to test.csv.
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root}: the demo output folder already exists")
    missing = [m for m in H5_PREFIX if int(cfg.acquisitions.get(m, 0)) < 1]
    if missing:
        raise ValueError(
            f"DemoConfig.acquisitions must give >= 1 acquisition for {list(H5_PREFIX)}; "
            f"missing or < 1: {missing} (got {dict(cfg.acquisitions)})"
        )
    rng = np.random.default_rng(cfg.seed)
    sig = _signatures(len(store.label.names), rng)
    counts = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    n_tiles = sum(counts.values())
    ids = rng.choice(900_000, size=n_tiles, replace=False) + 1
    tile_rngs = rng.spawn(n_tiles)
    header = "aerial_name,sen_name,aerial_date," + ",".join(store.label.names) + "\n"
    with atomic_path(root) as tmp:
        (tmp / "aerial").mkdir(parents=True)
        (tmp / "sentinel-ts").mkdir()
        i = 0
        for split in SPLITS:
            lines = [header]
            for _ in range(counts[split]):
                tile = _tile(store, cfg, sig, int(ids[i]), tile_rngs[i])
                _write_aerial(tmp / "aerial" / tile.aerial_name, tile, store)
                _write_h5(tmp / "sentinel-ts" / tile.sen_name, tile)
                fractions = ",".join(_fraction_text(int(u)) for u in tile.units)
                lines.append(f"{tile.aerial_name},{tile.sen_name},{tile.aerial_date},{fractions}\n")
                i += 1
            (tmp / f"{split}.csv").write_text("".join(lines))
