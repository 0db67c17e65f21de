"""The MAESTRO masked autoencoder (IGNF/MAESTRO ``maestro/ssl/mae.py``, ``maestro/ssl/mim.py``).

Pretraining: embed (patchify + spatial and date codes) -> mask per sequence -> encode the
visible tokens per fusion instance (+ inter-group blocks) -> decode the full sequence per
instance -> pixelify -> masked loss on normalized targets. Downstream: :meth:`encode` runs the
same encoder on all tokens and returns per-modality features for a head.

Batches are dicts: ``inputs[m]`` ``(B, T, C, H, W)`` (model channel order), ``dates[m]``
``(B, T, 3)`` and ``ref_date`` ``(B, 3)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from maestro.datasets.spec import ModalitySpec
from maestro.model.config import MAEConfig
from maestro.model.encodings import encode_dates, resample_grid, sincos_grid
from maestro.model.fusion import (
    BandGroups,
    SequencePlan,
    flatten,
    plan_modality,
    plan_sequences,
    unflatten,
)
from maestro.model.layers import Transformer
from maestro.model.loss import masked_loss
from maestro.model.masking import (
    StructuredMaskProbs,
    random_masking,
    sequence_mask_ratio,
    structured_mask,
)
from maestro.model.patchify import Patchify, Pixelify

Batch = Mapping[str, object]
MAX_REDRAWS = 100


@dataclass
class MAEOutput:
    """Result of a pretraining forward pass.

    Attributes:
        loss: weighted mean of the per-modality losses (weights: dates x grid cells).
        losses: per-modality masked losses.
        preds: per-modality reconstructions ``(B, T, C, H, W)`` in token channel order,
            in the normalized-target space.
        masks: per-modality token masks ``(B, G, T, L)``, True = masked.
    """

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    preds: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]


class MAESTRO(nn.Module):
    """Multimodal, multitemporal, multispectral masked autoencoder.

    Args:
        cfg: architecture and objective settings.
        modalities: input modality declarations.
        crop_m: crop side in metres (token grids derive from it).
        grid_pos_enc: side of the dataset-level sin-cos grid.
        norm_groups: optional per-modality normalization groups (band names) replacing the
            declared ones, e.g. the groups found by the band-group analysis.
    """

    def __init__(
        self,
        cfg: MAEConfig,
        modalities: Sequence[ModalitySpec],
        crop_m: float,
        grid_pos_enc: int,
        norm_groups: Mapping[str, BandGroups] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        ng = dict(norm_groups or {})
        self.plans = {m.name: plan_modality(m, crop_m, cfg, ng.get(m.name)) for m in modalities}
        self.sequences = plan_sequences(list(self.plans.values()), cfg.fusion)
        d, dd = cfg.embed_dim, cfg.decoder_dim

        self.patchify = nn.ModuleDict()
        self.pixelify = nn.ModuleDict()
        for p in self.plans.values():
            if p.embed in self.patchify:
                other = self.patchify[p.embed]
                if (other.group_sizes, other.patch) != (p.token_sizes, p.patch):
                    raise ValueError(f"{p.name}: tokenizer {p.embed!r} shared with other shapes")
                continue
            self.patchify[p.embed] = Patchify(p.token_sizes, p.patch, d)
            self.pixelify[p.embed] = Pixelify(p.token_sizes, p.patch, dd)

        keys = list(dict.fromkeys(s.key for s in self.sequences))
        self.encoders = nn.ModuleDict(
            {k: Transformer(d, cfg.group_depth, cfg.heads, cfg.dim_head, cfg.mlp_dim) for k in keys}
        )
        self.inter = (
            Transformer(d, cfg.inter_depth, cfg.heads, cfg.dim_head, cfg.mlp_dim)
            if cfg.inter_depth
            else None
        )
        self.to_decoder = nn.ModuleDict(
            {k: nn.Linear(d, dd) if d != dd else nn.Identity() for k in keys}
        )
        self.decoders = nn.ModuleDict(
            {
                k: Transformer(
                    dd, cfg.decoder_depth, cfg.decoder_heads, cfg.decoder_dim_head, cfg.decoder_mlp
                )
                for k in keys
            }
        )
        self.mask_tokens = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(p.groups, dd)) for m, p in self.plans.items()}
        )
        grid_e = sincos_grid(grid_pos_enc, d, cfg.date_dim)
        grid_d = sincos_grid(grid_pos_enc, dd, cfg.date_dim)
        for m, p in self.plans.items():  # recomputed on every build, never checkpointed
            self.register_buffer(f"pos_{m}", resample_grid(grid_e, p.grid), persistent=False)
            self.register_buffer(f"dpos_{m}", resample_grid(grid_d, p.grid), persistent=False)

    # --- pieces -------------------------------------------------------------------------
    def codes(
        self, m: str, dates: torch.Tensor, ref_date: torch.Tensor, decoder: bool
    ) -> torch.Tensor:
        """Spatial + date code of modality ``m``: ``(B, 1, T, L, D)``."""
        p = self.plans[m]
        pos = getattr(self, f"{'dpos' if decoder else 'pos'}_{m}")  # [L, D]
        if dates.shape[1] != p.dates:
            raise ValueError(f"{m}: expected {p.dates} dates, got {dates.shape[1]}")
        scale = 1.0 if self.cfg.use_date_enc else 0.0
        date = encode_dates(dates, ref_date, pos.shape[-1], self.cfg.date_dim, scale)  # [B, T, D]
        return pos[None, None, None] + date[:, None, :, None, :]

    def embed(
        self, m: str, x: torch.Tensor, dates: torch.Tensor, ref_date: torch.Tensor
    ) -> torch.Tensor:
        """Tokens of modality ``m``: ``(B, T, C, H, W) -> (B, G, T, L, D)`` with codes added."""
        p = self.plans[m]
        tokens = self.patchify[p.embed](x[:, :, list(p.perm)])
        return tokens + self.codes(m, dates, ref_date, decoder=False)

    def _embed_all(self, batch: Batch) -> dict[str, torch.Tensor]:
        inputs, dates, ref = batch["inputs"], batch["dates"], batch["ref_date"]
        return {m: self.embed(m, inputs[m], dates[m], ref) for m in self.plans}

    def _inter(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Shared inter-group blocks over the concatenation of all sequences."""
        if self.inter is None:
            return xs
        sizes = [x.shape[1] for x in xs]
        return list(self.inter(torch.cat(xs, dim=1)).split(sizes, dim=1))

    def _structured(self, seq: SequencePlan, batch: int, device: torch.device) -> torch.Tensor:
        """Structured mask of a sequence, flattened like its tokens: ``(B', N)`` bool."""
        cfg = self.cfg
        if seq.per_image:
            p = self.plans[seq.modalities[0]]
            return torch.zeros(
                batch * p.groups * p.dates, p.locations, dtype=torch.bool, device=device
            )
        mod_drop = cfg.mask_mod if (cfg.fusion == "group" and len(seq.modalities) > 1) else 0.0
        probs = StructuredMaskProbs(mod_drop, cfg.mask_bands, cfg.mask_dates, cfg.mask_loc)
        current = None
        redo = None
        for _ in range(MAX_REDRAWS):  # redraw samples whose whole sequence came out masked
            parts = {}
            for m in seq.modalities:
                p = self.plans[m]
                draw = structured_mask(batch, p.groups, p.dates, p.locations, probs, device)
                parts[m] = draw[..., None]
            flat = flatten(seq, parts)[..., 0]
            current = flat if current is None else torch.where(redo[:, None], flat, current)
            redo = current.all(dim=1)
            if not redo.any():
                break
        return current

    def _mask_ratio(self, seq: SequencePlan) -> float:
        if seq.per_image:
            return self.cfg.mask_ratio
        images = sum(self.plans[m].groups * self.plans[m].dates for m in seq.modalities)
        return sequence_mask_ratio(self.cfg.mask_ratio, self.cfg.mask_scale, images)

    # --- pretraining --------------------------------------------------------------------
    def forward(self, batch: Batch) -> MAEOutput:
        """Masked reconstruction: returns the loss, per-modality losses, predictions and masks."""
        ref = batch["ref_date"]
        b, device = ref.shape[0], ref.device
        tokens = self._embed_all(batch)
        d = self.cfg.embed_dim

        visible, keeps, masks = [], [], {}
        for seq in self.sequences:
            x = flatten(seq, tokens)  # [B', N, D]
            n = x.shape[1]
            n_masked = min(max(round(self._mask_ratio(seq) * n), 0), n - 1)
            ids_keep, mask = random_masking(self._structured(seq, b, device), n_masked)
            x_vis = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, d))  # [B', N_vis, D]
            visible.append(self.encoders[seq.key](x_vis))
            keeps.append(ids_keep)
            for m, mm in unflatten(seq, mask[..., None], self.plans, b).items():
                masks[m] = mm[..., 0]  # [B, G, T, L]
        visible = self._inter(visible)

        preds = {}
        for seq, x_vis, ids_keep in zip(self.sequences, visible, keeps, strict=True):
            y = self.to_decoder[seq.key](x_vis)  # [B', N_vis, Dd]
            dd = y.shape[-1]
            base, code = {}, {}
            for m in seq.modalities:
                p = self.plans[m]
                shape = (b, p.groups, p.dates, p.locations, dd)
                base[m] = self.mask_tokens[m][None, :, None, None, :].expand(shape)
                code[m] = self.codes(m, batch["dates"][m], ref, decoder=True).expand(shape)
            # mask tokens take the dtype of the visible ones (bf16 under autocast)
            idx = ids_keep[..., None].expand(-1, -1, dd)
            full = flatten(seq, base).to(y.dtype).scatter(1, idx, y)  # [B', N, Dd]
            out = self.decoders[seq.key](full + flatten(seq, code))
            for m, t in unflatten(seq, out, self.plans, b).items():
                preds[m] = self.pixelify[self.plans[m].embed](t, self.plans[m].grid)

        losses, weights = {}, {}
        for m, p in self.plans.items():
            target = batch["inputs"][m][:, :, list(p.perm)]
            losses[m], _ = masked_loss(
                preds[m], target, masks[m], p.token_sizes, p.patch, p.norm_groups,
                self.cfg.loss, self.cfg.norm_eps,
            )  # fmt: skip
            weights[m] = p.dates * p.locations
        total = sum(weights[m] * losses[m] for m in losses) / sum(weights.values())
        return MAEOutput(total, losses, preds, masks)

    # --- downstream ---------------------------------------------------------------------
    def encode(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Unmasked encoding: per-modality features ``(B, G, T, L, D)``."""
        b = batch["ref_date"].shape[0]
        tokens = self._embed_all(batch)
        xs = self._inter([self.encoders[s.key](flatten(s, tokens)) for s in self.sequences])
        out: dict[str, torch.Tensor] = {}
        for seq, x in zip(self.sequences, xs, strict=True):
            out.update(unflatten(seq, x, self.plans, b))
        return out

    def compile_blocks(self) -> None:
        """``torch.compile`` every Transformer in place (the compute-heavy parts), with dynamic
        shapes because visible-token counts vary; parameter names are unchanged."""
        for module in self.modules():
            if isinstance(module, Transformer):
                module.compile(dynamic=True)

    def drop_decoder(self) -> None:
        """Remove the pretraining-only parts (decoders, projections, mask tokens, pixel heads)."""
        for name in ("decoders", "to_decoder", "pixelify", "mask_tokens"):
            delattr(self, name)
            setattr(self, name, None)

    def num_params(self) -> dict[str, int]:
        """Parameter counts: encoder side, decoder side, total."""

        def count(mods: Sequence[nn.Module | None]) -> int:
            return sum(p.numel() for mod in mods if mod is not None for p in mod.parameters())

        enc = count([self.patchify, self.encoders, self.inter])
        dec = count([self.decoders, self.to_decoder, self.pixelify, self.mask_tokens])
        return {"encoder": enc, "decoder": dec, "total": enc + dec}
