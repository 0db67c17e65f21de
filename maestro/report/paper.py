"""Published numbers of the MAESTRO paper (Tables 1 and 2), for side-by-side comparison.

Source: Table 1 of the README at the arXiv v1 era (IGNF/MAESTRO @ef8eb59). Values in %;
TreeSatAI-TS weighted F1, the others mIoU. None = not reported.
"""

from __future__ import annotations

#: Column order of the paper's Table 1 (dataset names of this pipeline).
TABLE1_DATASETS = ("treesatai_ts", "pastis_hd", "flair2", "flair_hub")

#: (model, size, fusion) -> values in TABLE1_DATASETS order.
TABLE1: dict[tuple[str, str, str], tuple[float | None, ...]] = {
    ("MAESTRO", "Base", "group"): (78.5, 68.8, 63.8, 64.9),
    ("MAESTRO", "Base", "inter-group"): (78.8, 68.6, 62.6, 65.9),
    ("MAESTRO (2x epochs)", "Base", "group"): (79.1, 68.8, 64.0, 64.8),
    ("MAESTRO (2x epochs)", "Base", "inter-group"): (79.4, 69.0, 63.3, 65.8),
    ("DINO-v2", "Base", "shared"): (76.7, 64.4, 64.2, 66.0),
    ("DINO-v2 sat.", "Large", "shared"): (76.3, 64.0, 63.5, 66.0),
    ("DOFA", "Base", "shared"): (76.0, 62.9, 62.3, 65.1),
    ("CROMA", "Base", "inter-croma"): (70.5, 65.0, 39.0, 44.3),
    ("AnySat", "Base", "-"): (75.1, 66.5, 55.1, None),
    ("ViT (supervised)", "Base", "group"): (75.7, 64.6, 58.3, 61.6),
    ("ViT (supervised)", "Base", "inter-group"): (75.6, 64.5, 58.2, 62.1),
    ("Previous SOTA", "-", "-"): (75.1, 66.5, 64.1, 64.3),
}

#: Table 2 (cross-dataset, README of IGNF/MAESTRO @6a30075): (model, pretraining data) ->
#: values in TABLE1_DATASETS order; None = not reported ("–").
TABLE2: dict[tuple[str, str], tuple[float | None, ...]] = {
    ("MAESTRO", "FLAIR-HUB"): (79.6, 68.0, None, None),
    ("MAESTRO", "S2-NAIP urban"): (78.8, 67.4, 62.6, 64.6),
    ("DINO-v2", "LVD-142M"): (76.7, 64.4, 64.2, 66.0),
    ("DINO-v2 sat.", "Maxar Vivid2"): (76.3, 64.0, 63.5, 66.0),
    ("DOFA", "DOFA MM"): (76.0, 62.9, 62.3, 65.1),
    ("CROMA", "SSL4EO"): (70.5, 65.0, 39.0, 44.3),
    ("Prithvi-EO-2.0", "HLS"): (75.6, 66.2, 41.8, 44.9),
    ("SatMAE", "fMoW RGB+S"): (76.9, 66.6, 42.5, 45.0),
}
