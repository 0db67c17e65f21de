"""The shared adaptation pieces of the baseline backbones."""

import pytest
import torch

from maestro.baselines.adapt import (
    NEW_CHANNEL_STD,
    add_date_codes,
    copied_bands,
    expand_patch_kernel,
    fold_dates,
    unfold_dates,
)
from maestro.model.encodings import encode_dates

S2 = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"]


def test_rgb_kernels_are_copied_exactly_to_the_bands_of_their_colour():
    rgb = torch.randn(384, 3, 14, 14)
    g = torch.Generator().manual_seed(0)
    out = expand_patch_kernel(rgb, S2, generator=g)
    assert out.shape == (384, 10, 14, 14)
    assert torch.equal(out[:, 2], rgb[:, 0])  # B4 = red
    assert torch.equal(out[:, 1], rgb[:, 1])  # B3 = green
    assert torch.equal(out[:, 0], rgb[:, 2])  # B2 = blue
    new = out[:, 3:]  # 7 bands without a pretrained colour: N(0, 0.01)
    assert abs(float(new.std()) - NEW_CHANNEL_STD) < 1e-3 and abs(float(new.mean())) < 1e-3
    again = expand_patch_kernel(rgb, S2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded
    aerial = expand_patch_kernel(rgb, ["R", "G", "B", "NIR"], generator=g)
    assert torch.equal(aerial[:, :3], rgb)
    assert copied_bands(S2) == {"B2": "B", "B3": "G", "B4": "R"}


def test_the_official_index_rule_is_available():
    rgb = torch.randn(8, 3, 4, 4)
    out = expand_patch_kernel(rgb, S2, match="index")
    assert torch.equal(out[:, :3], rgb)  # B2, B3, B4 take R, G, B as IGNF/MAESTRO does
    assert copied_bands(S2, match="index") == {"B2": "R", "B3": "G", "B4": "B"}
    sar = expand_patch_kernel(rgb, ["VV", "VH"])  # no colour at all: every kernel is new
    assert float(sar.abs().max()) < 10 * NEW_CHANNEL_STD
    with pytest.raises(ValueError, match=r"expected a \(D, 3, p, p\) kernel"):
        expand_patch_kernel(torch.randn(8, 4, 4, 4), S2)
    with pytest.raises(ValueError, match="match must be"):
        expand_patch_kernel(rgb, S2, match="colour")


def test_dates_fold_into_the_batch_and_back():
    x = torch.randn(2, 3, 4, 6, 6)
    folded = fold_dates(x)
    assert folded.shape == (6, 4, 6, 6) and torch.equal(folded[4], x[1, 1])
    tokens = torch.randn(6, 9, 16)
    assert torch.equal(unfold_dates(tokens, 2)[1, 1], tokens[4])


def test_date_codes_are_added_after_the_backbone():
    tokens = torch.randn(2, 3, 5, 16)
    dates = torch.tensor([[[2020, 10, 0], [2020, 100, 0], [2020, 200, 0]]] * 2)
    ref = torch.tensor([[2020, 182, 0]] * 2)
    out = add_date_codes(tokens, dates, ref)
    code = encode_dates(dates, ref, 16)  # [B, T, D], the first 8 channels zero
    torch.testing.assert_close(out - tokens, code[:, :, None].expand_as(tokens))
    assert torch.equal(out[..., :8], tokens[..., :8])
    assert not torch.equal(code[:, 0], code[:, 1])  # each date its own code
