"""The MAESTRO model: tokenizers, encodings, fusion, masking, targets, loss, heads, sizes."""

from maestro.model.config import SIZES, MAEConfig, build_config
from maestro.model.heads import ClassificationHead, DownstreamModel, SegmentationHead
from maestro.model.mae import MAESTRO, MAEOutput

__all__ = [
    "MAESTRO",
    "SIZES",
    "ClassificationHead",
    "DownstreamModel",
    "MAEConfig",
    "MAEOutput",
    "SegmentationHead",
    "build_config",
]
