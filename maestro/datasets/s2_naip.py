"""S2-NAIP urban: pretraining only, US cities (IGNF/MAESTRO ``maestro/conf/dataset/s2_naip.py``).

Layout (MAESTRO's conversion of allenai/s2-naip, see ``maestro/data/readers/s2_naip.py``):
``naip/<name>.png`` (R, G, B, NIR at 1.25 m, 512 px), ``sentinel2/<name>_stacked.tif``
(T x 10 bands, 10 m, 64 px), ``sentinel1/<name>.tif`` (T x 2 bands, dB), ``dates/{naip,s2,s1}/
<name>.txt`` (product names) and split CSVs with column ``name``.

The NAIP image feeds two model modalities (as upstream): "aerial", up-sampled x4 to an effective
0.3125 m (384 px per 120 m crop) like the FLAIR/TreeSatAI aerial inputs, and "spot", its RGB at
an effective 0.94 m (128 px) like PASTIS's SPOT, so their tokenizers transfer.
"""

from __future__ import annotations

from maestro.datasets.bands import (
    AERIAL_MODEL_ORDER,
    AERIAL_NORM_GROUPS,
    S1_BANDS,
    sentinel1,
    sentinel2,
    wavelengths,
)
from maestro.datasets.spec import DatasetSpec, ModalitySpec, Scaling, StoreSpec

NAIP_BANDS = ("R", "G", "B", "NIR")

STORE = StoreSpec(
    name="s2_naip",
    modalities=(
        ModalitySpec(
            name="aerial",
            bands=NAIP_BANDS,
            dtype="uint8",
            resolution_m=1.25,
            patch_size=16,
            num_dates=1,
            temporal=False,
            scaling=Scaling(divisor=255.0),
            token_groups=(AERIAL_MODEL_ORDER,),
            norm_groups=AERIAL_NORM_GROUPS,
            wavelengths_um=wavelengths(NAIP_BANDS),
            image_size=384,
        ),
        ModalitySpec(
            name="spot",
            bands=NAIP_BANDS,
            dtype="uint8",
            resolution_m=1.25,
            patch_size=16,
            num_dates=1,
            temporal=False,
            scaling=Scaling(divisor=255.0),
            token_groups=(("R", "G", "B"),),
            norm_groups=(("R", "G", "B"),),
            wavelengths_um=wavelengths(NAIP_BANDS),
            image_size=128,
            source="aerial",
        ),
        sentinel2("uint16", resolution_m=10.0, divisor=5000.0, has_mask=False),
        sentinel1("s1", S1_BANDS, "float32", 10.0, Scaling(divisor=20.0)),
    ),
    label=None,
    tile_m=640.0,
    crop_m=120.0,
    grid_pos_enc=192,
    crs="",  # UTM zone of each tile (the tile index records it)
    crops_per_side=5,
)


def datasets(store: StoreSpec) -> list[DatasetSpec]:
    """S2-NAIP urban as a pretraining-only dataset (train + val + test)."""
    return [
        DatasetSpec(
            name="s2_naip",
            title="S2-NAIP urban",
            store=store,
            inputs=("aerial", "spot", "s2", "s1"),
            split_scheme="default",
            task=None,
            pretrain_splits=("train", "val", "test"),
        )
    ]
