"""Temporal aggregation of a raw acquisition series to a fixed number of dates.

As in IGNF/MAESTRO's ``maestro/dataset/dataset.py`` except where noted, with ``T`` raw
acquisitions and ``n`` model dates (``k = T // n``):

1. start offset ``s`` in ``[0, T mod n]``: uniform at training, centred ``(T mod n) // 2`` at
   evaluation (upstream draws it at random in every stage; we make eval deterministic,
   docs/decisions.md D2);
2. acquisitions ``s .. s + n*k - 1`` split, in time order, into ``n`` chunks of ``k``;
3. an acquisition is *dirty* if any pixel of the crop is invalid (cloud/snow) or has a
   non-finite value in some band (NaN: upstream looks at the mask only, docs/decisions.md
   D17); dirty ones are excluded from a chunk unless the whole chunk is dirty;
4. one acquisition per chunk: a uniform random clean one at training, else the
   "medoid-like" one, the clean acquisition minimising the mean over bands and pixels of
   ``|x - per-pixel nanmedian of the chunk|`` (invalid pixels count as NaN).

``T == n``: every acquisition, in order, without cloud filtering (as upstream).

``T < n`` (upstream fails on a reshape; docs/decisions.md D5): nearest-index repetition. Slot ``j``
takes acquisition ``floor((j + 0.5) * T / n)``, so every acquisition is used, each slot
holds a real acquisition and the order is non-decreasing in time. It involves no
randomness and no cloud filtering (there is nothing to choose from).

``T == 0`` raises ``ValueError``.
"""

from __future__ import annotations

import warnings

import numpy as np
from einops import rearrange


def chunk_bounds(t: int, n: int, start: int) -> np.ndarray:
    """``(n, k)`` acquisition indices of each chunk for offset ``start`` (``k = t // n``)."""
    k = t // n
    return start + np.arange(n)[:, None] * k + np.arange(k)[None, :]


def dirty_dates(invalid: np.ndarray | None, t: int) -> np.ndarray:
    """``(T,)`` bool: True where ``invalid`` ``(T, H, W)`` flags any pixel of an acquisition."""
    if invalid is None:
        return np.zeros(t, dtype=bool)
    return rearrange(np.asarray(invalid, dtype=bool), "t h w -> t (h w)").any(axis=1)


def medoid_index(x: np.ndarray, invalid: np.ndarray | None, candidates: np.ndarray) -> int:
    """Position (in ``x``) of the medoid-like acquisition among ``candidates``.

    Args:
        x: ``(k, C, H, W)`` one chunk's values.
        invalid: ``(k, H, W)`` bool, or None; invalid pixels are treated as NaN.
        candidates: positions in ``[0, k)`` allowed to be chosen (the clean ones).

    Returns:
        The candidate minimising ``nanmean_{c,h,w} |x - nanmedian_t(x)|`` (ties: the earliest;
        a candidate with no finite value ranks last).
    """
    x = np.array(x, dtype=np.float64)
    if invalid is not None:
        x[np.broadcast_to(np.asarray(invalid, bool)[:, None], x.shape)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels / acquisitions
        median = np.nanmedian(x, axis=0)  # (C, H, W)
        dev = np.nanmean(np.abs(x[candidates] - median[None]).reshape(len(candidates), -1), axis=1)
    dev = np.where(np.isfinite(dev), dev, np.inf)
    return int(candidates[int(np.argmin(dev))])


def select_dates(
    x: np.ndarray, invalid: np.ndarray | None, n: int, rng: np.random.Generator | None
) -> np.ndarray:
    """Indices of the ``n`` acquisitions to keep, in time order.

    Args:
        x: ``(T, C, H, W)`` raw (or scaled) values of the crop; NaN allowed.
        invalid: ``(T, H, W)`` bool cloud/snow mask of the crop, or None (non-finite pixels
            of ``x`` count as invalid as well).
        n: number of model dates.
        rng: a Generator for training (random offset and random clean pick), or None for
            evaluation (centred offset, medoid-like pick).

    Returns:
        ``(n,)`` int64 indices into ``T``.
    """
    t = int(x.shape[0])
    if n < 1:
        raise ValueError(f"number of dates must be >= 1, got {n}")
    if t == 0:
        raise ValueError(f"cannot select {n} dates from an empty series (T = 0)")
    if invalid is not None and np.shape(invalid) != (t, *x.shape[2:]):
        raise ValueError(f"invalid mask shape {np.shape(invalid)} does not match x {x.shape}")
    if t == n:
        return np.arange(n, dtype=np.int64)
    if t < n:
        return np.floor((np.arange(n) + 0.5) * t / n).astype(np.int64)
    rem = t % n
    start = int(rng.integers(0, rem + 1)) if rng is not None else rem // 2
    chunks = chunk_bounds(t, n, start)
    nonfinite = None
    if np.issubdtype(x.dtype, np.floating):  # NaN / inf pixels are invalid too
        nonfinite = ~np.isfinite(x).all(axis=1)  # [T, H, W]
        invalid = nonfinite if invalid is None else np.asarray(invalid, bool) | nonfinite
    dirty = dirty_dates(invalid, t)
    out = np.empty(n, dtype=np.int64)
    for j, chunk in enumerate(chunks):
        clean = np.flatnonzero(~dirty[chunk])
        cand = clean if clean.size else np.arange(chunk.size)
        if rng is not None:
            out[j] = chunk[int(rng.choice(cand))]
        elif cand.size == 1:
            out[j] = chunk[int(cand[0])]
        else:
            # no clean date in the chunk: as IGNF/MAESTRO, the pick ignores the cloud mask
            # (only non-finite pixels stay out of the medoid's distances)
            mask = invalid if clean.size else nonfinite
            inv = None if mask is None else mask[chunk]
            out[j] = chunk[medoid_index(x[chunk], inv, cand)]
    return out
