"""The hierarchical bootstrap of a mean over seeds, shared by the tables and the margins.

Every downstream job stores bootstrap replicates of its test metric, drawn with the same seed
over the same test items in the same order (:func:`maestro.train.metrics.bootstrap`), so
replicate ``r`` of any two jobs is computed on the same resample of the items. A draw of the
mean over ``k`` seeds therefore picks ``k`` seeds with replacement and one replicate index
``r``, shared by every chosen seed: the seed spread and the item spread both enter, and the
interval is that of the reported quantity (the mean over seeds), not of a single run.

With few seeds the seed part of a percentile bootstrap is narrow (its variance is
``(k - 1) / k`` of the usual estimate, 2/3 at ``k = 3``): intervals over three seeds are
approximate, and a margin that holds only by its last tenth of a point is worth a fourth seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stack_replicates(replicates: Sequence[np.ndarray]) -> np.ndarray:
    """``(seeds, R)`` array of the replicates of each seed, cut to the shortest ``R``."""
    reps = [np.asarray(r, dtype=np.float64) for r in replicates]
    n_rep = min(len(r) for r in reps)
    return np.stack([r[:n_rep] for r in reps])


def seed_mean_draws(stack: np.ndarray, r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(draws,)`` means over ``seeds`` resampled seeds, each at replicate ``r[d]``.

    ``stack``: ``(seeds, R)`` from :func:`stack_replicates`; ``r``: ``(draws,)`` replicate
    indices in ``[0, R)``, shared by all the seeds of a draw (and by the other side of a paired
    difference).
    """
    k = len(stack)
    pick = rng.integers(0, k, size=(len(r), k))  # (draws, seeds): seeds drawn with replacement
    return stack[pick, r[:, None]].mean(axis=1)
