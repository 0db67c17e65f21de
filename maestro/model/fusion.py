"""How modalities become token sequences: per-modality plans and fusion modes.

A modality's tokens are kept as ``(B, G, T, L, D)``: token groups, dates, locations. A
*sequence* is what one encoder instance attends over:

- ``shared``   every (modality, group, date) image is its own sequence; one encoder for all;
- ``monotemp`` same per-image sequences; one encoder per modality;
- ``mod``      one sequence per modality (all its groups and dates); one encoder per modality;
- ``group``    one sequence per fusion group (e.g. s1_asc + s1_des -> "s1"); one encoder per group.

With ``inter_depth > 0`` (``mod``/``group``) the visible tokens of all sequences are then
concatenated for the shared inter-group blocks. The modes are those of ``group_mods`` in
IGNF/MAESTRO's ``maestro/layers/utils.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from einops import rearrange

from maestro.datasets.spec import ModalitySpec
from maestro.model.config import MAEConfig

BandGroups = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ModalityPlan:
    """What the model needs to know about one input modality.

    Channels are handled internally in *token order*: the concatenation of the token groups.
    ``perm[i]`` is the model-input channel feeding token-order channel ``i``.
    """

    name: str
    embed: str  # tokenizer / pixel-head key
    group: str  # fusion group
    patch: int
    grid: int  # token grid side n (L = n * n)
    dates: int  # T
    perm: tuple[int, ...]
    token_sizes: tuple[int, ...]
    norm_groups: tuple[tuple[int, ...], ...] | None  # token-order channel indices

    @property
    def groups(self) -> int:
        """Token groups G."""
        return len(self.token_sizes)

    @property
    def locations(self) -> int:
        """Tokens per image L."""
        return self.grid * self.grid

    @property
    def tokens(self) -> int:
        """All tokens of the modality: G * T * L."""
        return self.groups * self.dates * self.locations


def plan_modality(
    spec: ModalitySpec, crop_m: float, cfg: MAEConfig, norm_groups: BandGroups | None = None
) -> ModalityPlan:
    """Plan one modality under the config's spectral fusion and target normalization.

    Args:
        spec: the declaration (model channel order = ``spec.model_bands``).
        crop_m: crop side in metres (sets the token grid).
        cfg: model config (``spectral``, ``target_norm``).
        norm_groups: band-name groups replacing ``spec.norm_groups`` (e.g. from the
            band-group analysis), or None.
    """
    model_bands = spec.model_bands
    norm = norm_groups or spec.norm_groups
    if sorted(b for g in norm for b in g) != sorted(model_bands):
        raise ValueError(f"{spec.name}: normalization groups {norm} must partition {model_bands}")
    token_groups = norm if cfg.spectral == "token" else (model_bands,)
    token_bands = [b for g in token_groups for b in g]
    if cfg.target_norm == "none":
        norm_idx = None
    elif cfg.target_norm == "patch":
        norm_idx = (tuple(range(len(token_bands))),)
    else:
        norm_idx = tuple(tuple(token_bands.index(b) for b in g) for g in norm)
    return ModalityPlan(
        name=spec.name,
        embed=spec.embed,
        group=spec.group,
        patch=spec.patch_size,
        grid=spec.grid(crop_m),
        dates=spec.num_dates,
        perm=tuple(model_bands.index(b) for b in token_bands),
        token_sizes=tuple(len(g) for g in token_groups),
        norm_groups=norm_idx,
    )


@dataclass(frozen=True)
class SequencePlan:
    """One sequence family: the encoder instance ``key`` and the modalities it concatenates."""

    key: str
    modalities: tuple[str, ...]
    per_image: bool  # True: every (group, date) image is a separate sequence


def plan_sequences(plans: Sequence[ModalityPlan], fusion: str) -> list[SequencePlan]:
    """Sequences of a fusion mode, in the order of first appearance of their modalities."""
    if fusion in ("shared", "monotemp"):
        key = (lambda p: "shared") if fusion == "shared" else (lambda p: p.name)
        return [SequencePlan(key(p), (p.name,), per_image=True) for p in plans]
    if fusion == "mod":
        return [SequencePlan(p.name, (p.name,), per_image=False) for p in plans]
    order: dict[str, list[str]] = {}
    for p in plans:
        order.setdefault(p.group, []).append(p.name)
    return [SequencePlan(g, tuple(mods), per_image=False) for g, mods in order.items()]


def flatten(seq: SequencePlan, tokens: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Modality tokens ``{m: (B, G, T, L, D)}`` -> the sequence batch.

    ``(B, sum_m G*T*L, D)`` for joint sequences, ``(B*G*T, L, D)`` for per-image ones.
    """
    if seq.per_image:
        (m,) = seq.modalities
        return rearrange(tokens[m], "b g t l d -> (b g t) l d")
    return torch.cat([rearrange(tokens[m], "b g t l d -> b (g t l) d") for m in seq.modalities], 1)


def unflatten(
    seq: SequencePlan, x: torch.Tensor, plans: Mapping[str, ModalityPlan], batch: int
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`flatten`: the sequence batch -> ``{m: (B, G, T, L, D')}``."""
    if seq.per_image:
        (m,) = seq.modalities
        p = plans[m]
        return {m: rearrange(x, "(b g t) l d -> b g t l d", b=batch, g=p.groups, t=p.dates)}
    sizes = [plans[m].tokens for m in seq.modalities]
    out = {}
    for m, part in zip(seq.modalities, x.split(sizes, dim=1), strict=True):
        p = plans[m]
        out[m] = rearrange(part, "b (g t l) d -> b g t l d", g=p.groups, t=p.dates)
    return out
