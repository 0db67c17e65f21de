"""PASTIS-HD: crop-type semantic segmentation, France.

Raw layout: ``DATA_S2/S2_<id>.npy`` (T, 10, 128, 128) int16, ``DATA_S1A|DATA_S1D/S1A|S1D_<id>.npy``
(T, 3, 128, 128) float16 dB (VV, VH, VV/VH), ``DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019/
SPOT6_RVB_1M00_2019_<id>.tif`` (RGB uint8, 1 m), ``ANNOTATIONS/TARGET_<id>.npy`` (3, 128, 128)
uint8 with the class in channel 0, ``metadata.geojson`` with the acquisition dates, and split
CSVs with column ``image``. Declared after IGNF/MAESTRO's ``maestro/conf/dataset/pastis_hd.py``.
"""

from __future__ import annotations

from maestro.datasets.bands import sentinel1, sentinel2, wavelengths
from maestro.datasets.spec import DatasetSpec, LabelSpec, ModalitySpec, Scaling, StoreSpec, TaskSpec

#: PASTIS nomenclature (documentation/label_names.json); 19 = void, ignored.
CLASS_NAMES = (
    "Background",
    "Meadow",
    "Soft winter wheat",
    "Corn",
    "Winter barley",
    "Winter rapeseed",
    "Spring barley",
    "Sunflower",
    "Grapevine",
    "Beet",
    "Winter triticale",
    "Winter durum wheat",
    "Fruits, vegetables, flowers",
    "Potatoes",
    "Leguminous fodder",
    "Soybeans",
    "Orchard",
    "Mixed cereal",
    "Sorghum",
    "Void label",
)
VOID = 19
#: The PASTIS authors' figure colours (their demo notebook): background black, class k of
#: 1..18 the k-th colour of matplotlib's ``tab20``.
LEGEND_COLOURS = (
    "#000000", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf",
)  # fmt: skip

#: The SPOT mosaic and the reference date of every sample (MAESTRO fixes both to mid-2019).
SPOT_DATE = "20190701"

S1_FILE_BANDS = ("VV", "VH", "VV/VH")
#: Backscatter in dB: / 20 (no log).
S1_SCALING = Scaling(divisor=20.0)


STORE = StoreSpec(
    name="pastis_hd",
    modalities=(
        ModalitySpec(
            name="spot",
            bands=("R", "G", "B"),
            dtype="uint8",
            resolution_m=1.0,
            patch_size=16,
            num_dates=1,
            temporal=False,
            scaling=Scaling(divisor=255.0),
            token_groups=(("R", "G", "B"),),
            norm_groups=(("R", "G", "B"),),
            wavelengths_um=wavelengths(("R", "G", "B")),
        ),
        sentinel2("int16", resolution_m=10.0, divisor=10000.0, has_mask=False),
        *(sentinel1(o, S1_FILE_BANDS, "float16", 10.0, S1_SCALING) for o in ("s1_asc", "s1_des")),
    ),
    label=LabelSpec(kind="raster", names=CLASS_NAMES, dtype="uint8", grid_modality="s2"),
    tile_m=1280.0,
    crop_m=160.0,
    grid_pos_enc=256,
    crs="EPSG:2154",
    ref_date=SPOT_DATE,
)


def datasets(store: StoreSpec) -> list[DatasetSpec]:
    """Benchmark datasets defined on the (possibly overridden) PASTIS-HD store."""
    label_map = (*range(VOID), -1)
    return [
        DatasetSpec(
            name="pastis_hd",
            title="PASTIS-HD",
            store=store,
            inputs=("spot", "s2", "s1_asc", "s1_des"),
            split_scheme="default",
            task=TaskSpec(
                kind="segmentation",
                classes=CLASS_NAMES[:VOID],
                metric="miou",
                label_map=label_map,
                ref_modality="s2",
                colours=LEGEND_COLOURS,
            ),
        )
    ]
