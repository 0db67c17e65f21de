"""TreeSatAI-TS: tree-genus multi-label classification, Germany.

Raw layout: ``aerial/<name>.tif`` (4-band uint8, 304 px at 0.2 m, file order NIR, G, B, R),
``sentinel-ts/<stem>_<year>.h5`` (S2 with snow/cloud masks, S1 asc/des series) and split
CSVs ``train/val/test.csv`` with the 15 genus area fractions. Declared after IGNF/MAESTRO's
``maestro/conf/dataset/treesatai_ts.py``.
"""

from __future__ import annotations

from maestro.datasets.bands import aerial, sentinel1, sentinel2
from maestro.datasets.spec import DatasetSpec, LabelSpec, Scaling, StoreSpec, TaskSpec

#: Genus columns in the order of MAESTRO's split CSVs (the target vector order).
GENERA = (
    "Betula",
    "Cleared",
    "Quercus",
    "Larix",
    "Fraxinus",
    "Alnus",
    "Pseudotsuga",
    "Prunus",
    "Fagus",
    "Acer",
    "Abies",
    "Pinus",
    "Tilia",
    "Picea",
    "Populus",
)

#: A genus is a positive label when its area fraction exceeds this (``treesat_mlc_thresh``).
AREA_FRACTION_THRESHOLD = 0.07

AERIAL_FILE_BANDS = ("NIR", "G", "B", "R")
S1_FILE_BANDS = ("VV", "VH")
#: Linear backscatter: ln(max(x, 1e-10)) / 5.
S1_SCALING = Scaling(divisor=5.0, log=True)


STORE = StoreSpec(
    name="treesatai_ts",
    modalities=(
        aerial(AERIAL_FILE_BANDS, resolution_m=0.2, patch_size=20),
        sentinel2("float32", resolution_m=10.0, divisor=5000.0, has_mask=True),
        *(sentinel1(o, S1_FILE_BANDS, "float32", 10.0, S1_SCALING) for o in ("s1_asc", "s1_des")),
    ),
    label=LabelSpec(kind="fractions", names=GENERA, dtype="float32"),
    tile_m=60.0,
    crop_m=60.0,
    grid_pos_enc=96,
    crs="EPSG:25832",
)


def datasets(store: StoreSpec) -> list[DatasetSpec]:
    """Benchmark datasets defined on the (possibly overridden) TreeSatAI-TS store."""
    return [
        DatasetSpec(
            name="treesatai_ts",
            title="TreeSatAI-TS",
            store=store,
            inputs=("aerial", "s2", "s1_asc", "s1_des"),
            split_scheme="default",
            task=TaskSpec(
                kind="multilabel",
                classes=GENERA,
                metric="weighted_f1",
                threshold=AREA_FRACTION_THRESHOLD,
            ),
        )
    ]
