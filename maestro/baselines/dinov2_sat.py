"""DINO-v2 sat.: the DINO-v2 ViT-L/16 that Meta and WRI pretrained on Maxar Vivid2 imagery for
canopy-height mapping (Tolan et al. 2024, "Very high resolution canopy height maps from RGB
imagery using self-supervised vision transformer and convolutional decoder trained on aerial
lidar", arXiv 2304.07213), as a baseline.

The architecture is DINO-v2's (``transformers.Dinov2Model``, as for :mod:`maestro.baselines.
dinov2`) at patch 16 and 224 px; only the checkpoint differs. It is published in the layout of
Meta's own DINO-v2 code (``patch_embed.proj``, ``pos_embed``, ``blocks.<k>.attn.qkv``,
``ls1.gamma``, ``norm``, ...) under a model prefix (e.g. ``...backbone.``), and its "compressed"
variant stores the Linear layers dynamically quantized to int8. :func:`load_dinov2_sat`
de-quantizes (:func:`dequantize`), strips the prefix, renames the keys to ``transformers``'
(:func:`meta_to_hf`, the fused ``qkv`` split into query, key and value) and loads them, naming
the file and the tensors when something does not fit. The checkpoint is read from a local path
(the paper's protocol: it is distributed with the canopy-height code, not on a model hub).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from maestro.baselines.adapt import require_fit

PATCH, IMAGE = 16, 224
#: (hidden size, layers, heads): ``large`` is the published model, ``demo`` for random init.
SIZES = {"demo": (64, 2, 2), "large": (1024, 24, 16)}
FUSIONS = ("shared", "monotemp")
_PACKED = "._packed_params._packed_params"


def dinov2_sat_config(size: str = "large"):
    """The ``transformers.Dinov2Config``: patch 16, 224 px, LayerScale 1.0, LN eps 1e-6."""
    from transformers import Dinov2Config

    if size not in SIZES:
        raise ValueError(f"DINO-v2 sat. size {size!r}: expected one of {sorted(SIZES)}")
    dim, depth, heads = SIZES[size]
    return Dinov2Config(
        hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
        intermediate_size=4 * dim, patch_size=PATCH, image_size=IMAGE, num_channels=3,
        layerscale_value=1.0, layer_norm_eps=1e-6, qkv_bias=True,
    )  # fmt: skip


def random_dinov2_sat(size: str = "demo", seed: int = 0):
    """A randomly initialised DINO-v2 sat. (the demo's "random init" rows)."""
    from transformers import Dinov2Model

    torch.manual_seed(seed)
    return Dinov2Model(dinov2_sat_config(size))


def dequantize(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Float tensors of a state dict whose Linear layers may be dynamically quantized
    (``<layer>._packed_params._packed_params`` = (int8 weight, bias), with ``scale``,
    ``zero_point`` and ``dtype`` entries): each becomes ``<layer>.weight`` / ``.bias``."""
    packed = {k[: -len(_PACKED)] for k in state if k.endswith(_PACKED)}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(_PACKED):
            weight, bias = value
            base = key[: -len(_PACKED)]
            out[f"{base}.weight"] = weight.dequantize() if weight.is_quantized else weight
            if bias is not None:
                out[f"{base}.bias"] = bias.detach()
            continue
        base = key.rsplit(".", 1)[0].removesuffix("._packed_params")
        if base in packed:  # scale, zero_point, dtype of a packed layer
            continue
        if isinstance(value, torch.Tensor):
            out[key] = value.dequantize() if value.is_quantized else value
    return out


def strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The backbone's entries without their model prefix (found from ``patch_embed.proj``)."""
    anchor = "patch_embed.proj.weight"
    hits = [k for k in state if k.endswith(anchor)]
    if len(hits) != 1:
        raise ValueError(f"expected one '*{anchor}' entry (a DINO-v2 backbone), found {hits}")
    prefix = hits[0][: -len(anchor)]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


_BLOCK = {
    "norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.o_proj", "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}  # fmt: skip


def meta_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Meta's DINO-v2 names -> ``transformers``' ``Dinov2Model`` names; a key that has no
    counterpart is an error naming it."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    top = {
        "cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
        "mask_token": "embeddings.mask_token",
        "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
        "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias",
    }  # fmt: skip
    for key, value in state.items():
        if key in top:
            v = value.reshape(1, -1) if key == "mask_token" else value
            out[top[key]] = v
            continue
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias|gamma)", key)
        if not m:
            unknown.append(key)
            continue
        k, part, kind = m.groups()
        layer = f"encoder.layer.{k}"
        if part == "attn.qkv":
            for name, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3), strict=True):
                out[f"{layer}.attention.{name}.{kind}"] = chunk
        elif part in ("ls1", "ls2") and kind == "gamma":
            out[f"{layer}.layer_scale{part[-1]}.lambda1"] = value
        elif part in _BLOCK:
            out[f"{layer}.{_BLOCK[part]}.{kind}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"not DINO-v2 backbone keys: {unknown[:5]}")
    return out


def load_dinov2_sat(path: str | os.PathLike[str], size: str = "large"):
    """The DINO-v2 sat. ``Dinov2Model`` from the canopy-height checkpoint at ``path`` (plain
    or compressed); errors name the file and what does not fit."""
    from transformers import Dinov2Model

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt.get("model", ckpt)) if isinstance(ckpt, dict) else None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(ckpt).__name__}")
    try:
        hf = meta_to_hf(strip_prefix(dequantize(state)))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    model = Dinov2Model(dinov2_sat_config(size))
    require_fit(path, f"DINO-v2 sat. ({size})", hf, model.state_dict())
    model.load_state_dict({k: v.float() for k, v in hf.items()})
    return model
