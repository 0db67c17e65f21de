"""What a baseline run is, as plain data (no torch): :class:`BaselineSpec`, the job
configuration's ``baseline`` section and one row of the baselines sheet."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODELS = ("dinov2", "dinov2_sat", "dofa", "satmae", "prithvi", "croma")
#: Table row names of the backbones.
NAMES = {
    "dinov2": "DINO-v2", "dinov2_sat": "DINO-v2 sat.", "dofa": "DOFA", "satmae": "SatMAE",
    "prithvi": "Prithvi-EO-2.0", "croma": "CROMA",
}  # fmt: skip
#: Sizes of each backbone (the ``SIZES`` of its module; ``demo``: random init only).
SIZES = {
    "dinov2": ("demo", "small", "base", "large"),
    "dinov2_sat": ("demo", "large"),
    "dofa": ("demo", "small", "base", "large"),
    "satmae": ("demo", "base", "large"),
    "prithvi": ("demo", "100", "300"),
    "croma": ("demo", "base", "large"),
}
#: Fusion modes of each backbone: the image models encode every modality (``shared``: one
#: encoder, ``monotemp``: one per modality); SatMAE and Prithvi read Sentinel-2 only (``mod``);
#: CROMA reads S1 and S2 (``late``: their encodings; ``inter``: also the cross encoding).
FUSIONS = {
    "dinov2": ("shared", "monotemp"),
    "dinov2_sat": ("shared", "monotemp"),
    "dofa": ("shared", "monotemp"),
    "satmae": ("mod",),
    "prithvi": ("mod",),
    "croma": ("late", "inter"),
}
#: Backbones that read one modality, and which.
SINGLE_MODALITY = {"satmae": "s2", "prithvi": "s2"}


@dataclass(frozen=True)
class BaselineSpec:
    """What baseline to build (see the module docstring).

    ``grid``: token grid side of every modality (the images are resized to ``grid x patch``
    pixels); ``None`` keeps each modality's crop size rounded to whole patches (at least 1).
    """

    model: str
    size: str = "base"
    fusion: str = "shared"
    weights: str | None = None
    grid: int | None = None
    head: str = "attentive"
    head_heads: int = 8
    head_norm: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"baseline model {self.model!r}: expected one of {MODELS}")
        for key, allowed in (("size", SIZES), ("fusion", FUSIONS)):
            value = getattr(self, key)
            if value not in allowed[self.model]:
                raise ValueError(
                    f"baseline {self.model}: {key} {value!r} is not one of "
                    f"{list(allowed[self.model])}"
                )

    @property
    def label(self) -> str:
        """The row name in the tables, e.g. ``DINO-v2 (random init, demo)``."""
        name = NAMES[self.model]
        return f"{name} (random init, demo)" if self.weights is None else name


def spec_from(data: Mapping[str, Any]) -> BaselineSpec:
    """A :class:`BaselineSpec` from plain data; an unknown key is an error naming it."""
    fields = {f.name for f in dataclasses.fields(BaselineSpec)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"baseline: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    return BaselineSpec(**dict(data))
