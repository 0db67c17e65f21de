"""Named pieces that adapt an image foundation model to multispectral, multitemporal inputs
(IGNF/MAESTRO ``maestro/baselines``; the MAESTRO paper, baselines section):

- :func:`expand_patch_kernel`: a patch embedding pretrained on 3 channels, widened to a
  modality's bands: the pretrained kernel of each of R, G, B is copied to the band of that
  colour, every other band's kernel is drawn from N(0, 0.01).
- :func:`fold_dates` / :func:`unfold_dates`: each date is encoded as a separate image, the
  dates folded into the batch.
- :func:`add_date_codes`: the MAESTRO date encoding (its last ``date_dim`` channels, the rest
  zero) added to the backbone's output tokens, after the backbone.

Decision (docs/decisions.md, B1): the official code copies the RGB kernel to the *first
three* input channels. For Sentinel-2 (B2, B3, B4, ...) that puts the red kernel on the blue
band; here kernels are matched by band *name* (``match="name"``, the default), and
``match="index"`` reproduces the official rule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import torch
from einops import rearrange

from maestro.model.encodings import encode_dates

#: Band names that carry each colour of a pretrained RGB kernel, per sensor naming.
COLOUR_BANDS = {"R": ("R", "B4"), "G": ("G", "B3"), "B": ("B", "B2")}
#: Standard deviation of the kernels of bands without a pretrained colour.
NEW_CHANNEL_STD = 0.01


def expand_patch_kernel(
    kernel: torch.Tensor,
    bands: Sequence[str],
    colours: Sequence[str] = ("R", "G", "B"),
    match: str = "name",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A ``(D, 3, p, p)`` pretrained kernel -> ``(D, C, p, p)`` for ``C = len(bands)``.

    Args:
        kernel: the pretrained patch-embedding weight; input channel ``i`` is ``colours[i]``.
        bands: the modality's band names, in input order.
        match: ``"name"``: a band takes the kernel of its colour (:data:`COLOUR_BANDS`);
            ``"index"``: bands 0, 1, 2 take kernels 0, 1, 2 (the official rule).
        generator: the random source of the new channels' N(0, 0.01) kernels.
    """
    if kernel.ndim != 4 or kernel.shape[1] != len(colours):
        raise ValueError(
            f"expected a (D, {len(colours)}, p, p) kernel, found {tuple(kernel.shape)}"
        )
    if match not in ("name", "index"):
        raise ValueError(f"match must be 'name' or 'index', found {match!r}")
    d, _, ph, pw = kernel.shape
    out = torch.randn(d, len(bands), ph, pw, generator=generator, dtype=kernel.dtype)
    out = out.to(kernel.device) * NEW_CHANNEL_STD
    for i, band in enumerate(bands):
        if match == "index":
            src = i if i < len(colours) else None
        else:
            src = next((c for c, col in enumerate(colours) if band in COLOUR_BANDS[col]), None)
        if src is not None:
            out[:, i] = kernel[:, src]
    return out


def copied_bands(
    bands: Sequence[str], colours: Sequence[str] = ("R", "G", "B"), match: str = "name"
) -> dict[str, str]:
    """Which band takes which pretrained colour under ``match`` (for logs and tests)."""
    if match == "index":
        return {b: colours[i] for i, b in enumerate(bands[: len(colours)])}
    return {b: c for b in bands for c in colours if b in COLOUR_BANDS[c]}


def fold_dates(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, C, H, W)`` -> ``(B * T, C, H, W)``: one image per date."""
    return rearrange(x, "b t c h w -> (b t) c h w")


def unfold_dates(tokens: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B * T, L, D)`` -> ``(B, T, L, D)``."""
    return rearrange(tokens, "(b t) l d -> b t l d", b=batch)


def add_date_codes(
    tokens: torch.Tensor, dates: torch.Tensor, ref_date: torch.Tensor, date_dim: int = 8
) -> torch.Tensor:
    """``(B, T, L, D)`` tokens + the MAESTRO date code of each date (``(B, T, 3)`` dates,
    ``(B, 3)`` reference), broadcast over the ``L`` locations."""
    code = encode_dates(dates, ref_date, tokens.shape[-1], date_dim)  # [B, T, D]
    return tokens + code[:, :, None, :].to(tokens.dtype)


def state_mismatch(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    optional: Collection[str] = (),
    prefix: str = "",
) -> tuple[list[str], list[str], list[str]]:
    """What keeps ``state`` from loading into a model whose state dict is ``expected``: the
    missing names (but ``optional`` ones), the unexpected names and ``name: found vs expected``
    shapes (names prefixed with ``prefix``)."""
    missing = sorted(set(expected) - set(state) - set(optional))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{prefix}{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    return missing, unexpected, shapes


def require_fit(
    path: object,
    what: str,
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    optional: Collection[str] = (),
) -> None:
    """``ValueError`` naming the file and the first tensors that do not fit, if any."""
    missing, unexpected, shapes = state_mismatch(state, expected, optional)
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path}: not a {what} checkpoint (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shapes {shapes[:5]})"
        )
