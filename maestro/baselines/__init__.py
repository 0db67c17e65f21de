"""Baseline foundation models adapted to the benchmark's inputs (the MAESTRO paper's Table 2
and the first Table 1: DINO-v2, DINO-v2 sat., DOFA, CROMA, Prithvi-EO-2.0, SatMAE).

Each backbone turns a batch into per-modality tokens ``(B, G, T, L, D)``, the layout of
:meth:`maestro.model.MAESTRO.encode`, so the same heads, probe and fine-tune recipes apply.
The adaptation pieces shared by all of them are in :mod:`maestro.baselines.adapt`; which
library each backbone comes from, and why, is in ``docs/baselines.md``.
"""
