"""Import a released MAESTRO checkpoint (IGNF/MAESTRO, e.g. ``IGNF/MAESTRO_FLAIR-HUB_base``'s
``checkpoints/pretrain-epoch=99.ckpt``) into this project's model.

The official model (``maestro.ssl.mae``) and ours hold the same tensors under other names; the
mapping is data (:data:`NAME_MAP`, one row per official name pattern). Two tensors also change
layout: the official pixel heads are 1 x 1 convolutions whose output rows are ordered
``(p1 p2 c)``, ours Linear layers ordered ``(c p q)`` (:func:`pixel_rows`); the official mask
tokens are ``(1, 1, 1, 1, D)``, ours ``(1, D)``. The downstream heads (``heads.*``) are not
pretrained and are not imported.

The architecture is read from the checkpoint's tensors (:func:`infer_architecture`: widths,
depths, the inter-group depth, patch sizes, token groups) and checked against the model we
build for the target dataset; a setting we cannot represent, a tensor of another shape, a
missing or an unknown tensor is an error naming it. When the checkpoint holds EMA weights
(``ema_model.*``) they are imported, else the raw ones (``model.*``): docs/decisions.md I1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

log = logging.getLogger(__name__)

#: Official name pattern -> our name (``{0}``, ``{1}``: the pattern's groups).
_WB = r"(weight|bias)"
NAME_MAP: tuple[tuple[str, str], ...] = (
    (rf"patch_embed\.([^.]+)\.patchify_bands\.(\d+)\.conv\.{_WB}", "patchify.{0}.proj.{1}.{2}"),
    (rf"patch_embed\.([^.]+)\.patchify_bands\.(\d+)\.norm\.{_WB}", "patchify.{0}.norm.{1}.{2}"),
    (rf"embed_to_rec\.([^.]+)\.pixelify_bands\.(\d+)\.conv\.{_WB}", "pixelify.{0}.proj.{1}.{2}"),
    (r"mask_token\.([^.]+)", "mask_tokens.{0}"),
    (r"enc_to_dec\.([^.]+)\.(weight|bias)", "to_decoder.{0}.{1}"),
    (r"encoder_inter\.(.+)", "inter.{0}"),
    (r"encoder\.([^.]+)\.(.+)", "encoders.{0}.{1}"),
    (r"decoder\.([^.]+)\.(.+)", "decoders.{0}.{1}"),
)  # fmt: skip
#: Inside a Transformer (vit-pytorch layout): the official output Linear is ``to_out.0`` and
#: the MLP's down projection ``net.4`` (a Dropout before it); ours ``to_out`` and ``net.3``.
BLOCK_MAP: tuple[tuple[str, str], ...] = (
    (r"(layers\.\d+\.0)\.to_out\.0\.(weight|bias)$", r"\1.to_out.\2"),
    (r"(layers\.\d+\.1)\.net\.4\.(weight|bias)$", r"\1.net.3.\2"),
)
#: Official tensors that are not pretrained weights of the MAE.
IGNORED = re.compile(r"heads\.")


def our_name(name: str) -> str | None:
    """Our parameter name of an official one (None: an official name we do not know)."""
    for pattern, template in NAME_MAP:
        m = re.fullmatch(pattern, name)
        if m:
            out = template.format(*m.groups())
            for block, repl in BLOCK_MAP:
                out = re.sub(block, repl, out)
            return out
    return None


def pixel_rows(t: torch.Tensor, patch: int) -> torch.Tensor:
    """Official pixel-head rows ``(p1 p2 c)`` -> ours ``(c p q)``: a conv weight
    ``(p*p*C, I, 1, 1)`` becomes a Linear weight ``(C*p*p, I)``; a bias is reordered alike."""
    w = t.reshape(t.shape[0], -1) if t.ndim == 4 else t[:, None]
    w = rearrange(w, "(p q c) i -> (c p q) i", p=patch, q=patch)
    return w if t.ndim == 4 else w[:, 0]


#: Tensors of the Transformer blocks (parameters every copy of the model holds).
_LAYER = re.compile(r"(encoder|encoder_inter|decoder)\.")


def official_state(ckpt: Mapping[str, Any], path: str | Path = "checkpoint") -> dict:
    """The MAE's tensors of a Lightning checkpoint: the EMA copy when there is one."""
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: no state dict (found {type(state).__name__})")
    copies = {
        prefix: {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        for prefix in ("ema_model.", "model.")
    }
    ema, raw = copies["ema_model."], copies["model."]
    if ema and raw:  # an EMA copy must hold every Transformer tensor the raw copy has
        lacking = sorted(k for k in set(raw) - set(ema) if _LAYER.match(k))
        if lacking:
            raise ValueError(
                f"{path}: the EMA copy (ema_model.*) lacks {len(lacking)} Transformer tensors "
                f"of the raw copy (model.*), e.g. {lacking[:3]}: a damaged checkpoint"
            )
    for picked in (ema, raw):
        if picked:
            return picked
    raise ValueError(f"{path}: no 'ema_model.*' or 'model.*' tensors (keys {list(state)[:5]})")


def infer_architecture(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Widths, depths, patch sizes and token groups of an official MAE state dict."""

    def layers(prefix: str) -> int:
        ids = {int(m.group(1)) for k in state if (m := re.match(rf"{prefix}\.layers\.(\d+)\.", k))}
        if ids != set(range(len(ids))):  # a block missing in the middle
            gaps = sorted(set(range(max(ids) + 1)) - ids)
            raise ValueError(f"{prefix}: expected layers 0..{max(ids)}, layers {gaps} are missing")
        return len(ids)

    groups = sorted({k.split(".")[1] for k in state if k.startswith("encoder.")})
    if not groups:
        raise ValueError("no encoder.<group> tensors: not a MAESTRO MAE")
    for part in ("encoder", "decoder"):
        depths = {g: layers(f"{part}.{g}") for g in groups}
        if len(set(depths.values())) > 1:  # every group has the same blocks
            raise ValueError(f"{part} groups of different depths {depths}: tensors are missing")
        if not any(depths.values()):  # an MAE has blocks in both
            raise ValueError(f"expected {part}.<group>.layers.* tensors, found none")
    convs: dict[str, dict[int, tuple[int, ...]]] = {}
    for k, v in state.items():
        m = re.fullmatch(r"patch_embed\.([^.]+)\.patchify_bands\.(\d+)\.conv\.weight", k)
        if m:
            convs.setdefault(m.group(1), {})[int(m.group(2))] = tuple(v.shape)
    if not convs:
        raise ValueError("no patch_embed.<modality> tensors: not a MAESTRO MAE")
    first = next(iter(convs.values()))[0]
    return {
        "embed_dim": first[0],
        "group_depth": layers(f"encoder.{groups[0]}"),
        "inter_depth": layers("encoder_inter"),
        "decoder_dim": int(state[f"enc_to_dec.{groups[0]}.weight"].shape[0]),
        "decoder_depth": layers(f"decoder.{groups[0]}"),
        "groups": groups,
        "patch": {mod: shapes[0][-1] for mod, shapes in convs.items()},
        "token_groups": {mod: len(shapes) for mod, shapes in convs.items()},
    }


def convert_state(
    official: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    patches: Mapping[str, int],
) -> dict[str, torch.Tensor]:
    """Our state dict from an official one, checked tensor by tensor against ``expected``
    (the state dict of the model we built); ``patches``: modality -> patch size."""
    out, unknown, shapes = {}, [], []
    for name, value in official.items():
        if IGNORED.match(name):
            continue
        ours = our_name(name)
        if ours is None or ours not in expected:
            unknown.append(name if ours is None else f"{name} (-> {ours})")
            continue
        if ours.startswith("pixelify."):
            value = pixel_rows(value, patches[ours.split(".")[1]])
        elif ours.startswith("mask_tokens."):
            value = value.reshape(1, -1)
        if tuple(value.shape) != tuple(expected[ours].shape):
            shapes.append(
                f"{name}: {tuple(value.shape)} vs ours {ours}: {tuple(expected[ours].shape)}"
            )
            continue
        out[ours] = value.detach().float()
    missing = sorted(set(expected) - set(out) - {k for k in expected if k.startswith("head.")})
    problems = []
    if shapes:
        problems.append("shapes differ: " + "; ".join(shapes[:5]))
    if unknown:
        problems.append(f"unknown tensors: {unknown[:5]}")
    if missing:
        problems.append(f"missing tensors: {missing[:5]}")
    if problems:
        raise ValueError(" | ".join(problems))
    return out


def load_official(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The MAE tensors of a released checkpoint file (EMA when present)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises several kinds of unpickling errors
        if trust_pickle:
            raise ValueError(f"{path}: not a readable checkpoint ({err})") from err
        raise ValueError(
            f"{path}: the checkpoint holds Python objects beyond tensors (the run's "
            "configuration); pass --trust-pickle to read it with full unpickling, only for a "
            f"file from a source you trust ({type(err).__name__})"
        ) from err
    return official_state(ckpt, path)


def import_checkpoint(path: str | Path, dataset, trust_pickle: bool = False):
    """Our pretrained MAE for ``dataset`` holding the weights of a released checkpoint:
    ``(model, cfg)``. The architecture comes from the checkpoint's tensors; a setting our
    model cannot represent, or a dataset declaration that differs (a patch size), is an error
    naming it."""
    from maestro.model.config import SIZES, build_config
    from maestro.train.build import build_mae

    state = load_official(path, trust_pickle)
    try:
        arch = infer_architecture(state)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    sizes = [s for s, v in SIZES.items() if v["embed_dim"] == arch["embed_dim"]]
    if not sizes:
        raise ValueError(
            f"{path}: width {arch['embed_dim']} matches no size preset {sorted(SIZES)}"
        )
    preset_depth = SIZES[sizes[0]]["depth"]
    if arch["group_depth"] + arch["inter_depth"] != preset_depth:
        log.warning(
            "%s: %d + %d blocks per sequence, the %s preset of width %d has %d: a truncated "
            "file, or a model of another depth", path, arch["group_depth"], arch["inter_depth"],
            sizes[0], arch["embed_dim"], preset_depth,
        )  # fmt: skip
    spectral = {m: n for m, n in arch["token_groups"].items() if n > 1}
    cfg = build_config(
        sizes[0],
        depth=arch["group_depth"] + arch["inter_depth"],
        inter_depth=arch["inter_depth"],
        decoder_dim=arch["decoder_dim"],
        decoder_depth=arch["decoder_depth"],
        fusion="group",
        spectral="token" if spectral else "joint",
    )
    wrong = {
        m: (p, dataset.store.modality(m).patch_size)
        for m, p in arch["patch"].items()
        if m in dataset.inputs and dataset.store.modality(m).patch_size != p
    }
    if wrong:
        raise ValueError(
            f"{path}: patch sizes differ from {dataset.name}'s declarations "
            f"(modality: checkpoint, declared): {wrong}; set overrides.<store>.modalities."
            "<modality>.patch_size"
        )
    model = build_mae(cfg, dataset)
    expected = model.state_dict()
    ours_groups = sorted({k.split(".")[1] for k in expected if k.startswith("encoders.")})
    if ours_groups != arch["groups"]:
        raise ValueError(
            f"{path}: encoder groups {arch['groups']} (group fusion) do not match the model "
            f"for {dataset.name} ({ours_groups})"
        )
    patches = {m: dataset.store.modality(m).patch_size for m in dataset.inputs}
    present = {k: v for k, v in state.items() if k.split(".")[1] in dataset.inputs or not
               k.startswith(("patch_embed.", "embed_to_rec.", "mask_token."))}  # fmt: skip
    try:
        converted = convert_state(present, expected, patches)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    model.load_state_dict(converted)
    return model, cfg
