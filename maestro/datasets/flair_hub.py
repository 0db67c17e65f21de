"""FLAIR-HUB and FLAIR#2: land-cover segmentation, France.

Raw layout: ``<DOMAIN>-<YEAR>_<MODALITY>/<ROI>/<DOMAIN>-<YEAR>_<MODALITY>_<ROI>_<pos>.tif``
per modality (multi-date GeoTIFFs stack dates x channels in the band axis, date-major),
``GLOBAL_ALL_MTD/GLOBAL_<SENSOR>_MTD_DATES.gpkg`` date tables and split CSVs with column
``patch_id`` (``train.csv`` ... for FLAIR-HUB, ``train_flair2.csv`` ... for FLAIR#2).

Declared after IGNF/MAESTRO's ``maestro/conf/dataset/flair.py``; its FLAIR#2 is FLAIR-HUB
refiltered (its README), not the original FLAIR#2 release.
"""

from __future__ import annotations

from maestro.datasets.bands import S1_BANDS, aerial, sentinel1, sentinel2
from maestro.datasets.spec import DatasetSpec, LabelSpec, ModalitySpec, Scaling, StoreSpec, TaskSpec

#: CoSIA land-cover nomenclature, raw values 0..18.
COSIA_NAMES = (
    "building",
    "greenhouse",
    "swimming pool",
    "impervious surface",
    "pervious surface",
    "bare soil",
    "water",
    "snow",
    "herbaceous vegetation",
    "agricultural land",
    "plowed land",
    "vineyard",
    "deciduous",
    "coniferous",
    "brushwood",
    "clear cut",
    "ligneous",
    "mixed",
    "undefined",
)
#: Legend colour of each class, as IGN publishes it with FLAIR #1/#2 and FLAIR-HUB (the
#: datasets' documentation pages): keyed by name, since CoSIA orders the classes differently.
LEGEND_COLOURS = {
    "building": "#db0e9a",
    "greenhouse": "#9999ff",
    "swimming pool": "#3de6eb",
    "impervious surface": "#f80c00",
    "pervious surface": "#938e7b",
    "bare soil": "#a97101",
    "water": "#1553ae",
    "snow": "#ffffff",
    "herbaceous vegetation": "#55ff00",
    "agricultural land": "#fff30d",
    "plowed land": "#e4df7c",
    "vineyard": "#660082",
    "deciduous": "#46e483",
    "coniferous": "#194a26",
    "brushwood": "#f3a60d",
    "clear cut": "#8ab3a0",
    "ligneous": "#c5dc42",
    "mixed": "#6b714f",
    "undefined": "#000000",
}
#: Evaluated classes: the first 15; raw 15..18 are ignored.
NUM_CLASSES = 15
#: FLAIR#2 additionally ignores greenhouse, swimming pool and snow.
FLAIR2_IGNORED = (1, 2, 7)

#: Linear backscatter: ln(max(x, 1e-10)) / 5.
S1_SCALING = Scaling(divisor=5.0, log=True)

#: Folder token of each modality in the distribution.
FOLDER_TOKENS = {
    "aerial": "AERIAL_RGBI",
    "dem": "DEM_ELEV",
    "s2": "SENTINEL2_TS",
    "s2_mask": "SENTINEL2_MSK-SC",
    "s1_asc": "SENTINEL1-ASC_TS",
    "s1_des": "SENTINEL1-DESC_TS",
    "label": "AERIAL_LABEL-COSIA",
}


STORE = StoreSpec(
    name="flair_hub",
    modalities=(
        aerial(("R", "G", "B", "NIR"), resolution_m=0.2, patch_size=16),
        ModalitySpec(
            name="dem",
            bands=("DSM", "DTM"),
            dtype="float32",
            resolution_m=0.2,
            patch_size=32,
            num_dates=1,
            temporal=False,
            scaling=Scaling(divisor=1000.0),
            token_groups=(("DSM", "DTM"),),
            norm_groups=(("DSM", "DTM"),),
            wavelengths_um=(None, None),
            transform="relative_height",
        ),
        sentinel2("uint16", resolution_m=10.24, divisor=5000.0, has_mask=True),
        *(sentinel1(o, S1_BANDS, "float32", 10.24, S1_SCALING) for o in ("s1_asc", "s1_des")),
    ),
    label=LabelSpec(kind="raster", names=COSIA_NAMES, dtype="uint8", grid_modality="aerial"),
    tile_m=102.4,
    crop_m=102.4,
    grid_pos_enc=160,
    split_schemes=("default", "flair2"),
    crs="EPSG:2154",
)


def _label_map(ignored: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-1 if (v >= NUM_CLASSES or v in ignored) else v for v in range(len(COSIA_NAMES)))


def datasets(store: StoreSpec) -> list[DatasetSpec]:
    """FLAIR-HUB and FLAIR#2 on the (possibly overridden) FLAIR-HUB store."""
    classes = COSIA_NAMES[:NUM_CLASSES]
    return [
        DatasetSpec(
            name="flair_hub",
            title="FLAIR-HUB",
            store=store,
            inputs=("aerial", "dem", "s2", "s1_asc", "s1_des"),
            split_scheme="default",
            task=TaskSpec(
                kind="segmentation",
                classes=classes,
                metric="miou",
                label_map=_label_map(()),
                ref_modality="aerial",
                colours=tuple(LEGEND_COLOURS[c] for c in classes),
            ),
        ),
        DatasetSpec(
            name="flair2",
            title="FLAIR#2",
            store=store,
            inputs=("aerial", "dem", "s2"),
            split_scheme="flair2",
            task=TaskSpec(
                kind="segmentation",
                classes=classes,
                metric="miou",
                label_map=_label_map(FLAIR2_IGNORED),
                ref_modality="aerial",
                colours=tuple(LEGEND_COLOURS[c] for c in classes),
            ),
        ),
    ]
