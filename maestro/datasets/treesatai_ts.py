"""TreeSatAI-TS: tree-genus multi-label classification, Germany (MAESTRO_SPEC §2.1).

Raw layout: ``aerial/<name>.tif`` (4-band uint8, 304 px at 0.2 m, file order NIR, G, B, R),
``sentinel-ts/<stem>_<year>.h5`` (S2 with snow/cloud masks, S1 asc/des series) and split
CSVs ``train/val/test.csv`` with the 15 genus area fractions.
"""

from __future__ import annotations

from maestro.datasets.bands import (
    AERIAL_MODEL_ORDER,
    AERIAL_NORM_GROUPS,
    S1_BANDS,
    S1_NORM_GROUPS,
    S2_BANDS,
    S2_NORM_GROUPS,
    wavelengths,
)
from maestro.datasets.spec import DatasetSpec, LabelSpec, ModalitySpec, Scaling, StoreSpec, TaskSpec

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


def _s1(name: str) -> ModalitySpec:
    return ModalitySpec(
        name=name,
        bands=S1_BANDS,
        dtype="float32",
        resolution_m=10.0,
        patch_size=2,
        num_dates=4,
        temporal=True,
        scaling=Scaling(divisor=5.0, log=True),
        token_groups=(S1_BANDS,),
        norm_groups=S1_NORM_GROUPS,
        fusion_group="s1",
        wavelengths_um=wavelengths(S1_BANDS),
    )


STORE = StoreSpec(
    name="treesatai_ts",
    modalities=(
        ModalitySpec(
            name="aerial",
            bands=AERIAL_FILE_BANDS,
            dtype="uint8",
            resolution_m=0.2,
            patch_size=20,
            num_dates=1,
            temporal=False,
            scaling=Scaling(divisor=255.0),
            token_groups=(AERIAL_MODEL_ORDER,),
            norm_groups=AERIAL_NORM_GROUPS,
            wavelengths_um=wavelengths(AERIAL_FILE_BANDS),
        ),
        ModalitySpec(
            name="s2",
            bands=S2_BANDS,
            dtype="float32",
            resolution_m=10.0,
            patch_size=2,
            num_dates=16,
            temporal=True,
            scaling=Scaling(divisor=5000.0),
            token_groups=(S2_BANDS,),
            norm_groups=S2_NORM_GROUPS,
            wavelengths_um=wavelengths(S2_BANDS),
            has_mask=True,
        ),
        _s1("s1_asc"),
        _s1("s1_des"),
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
