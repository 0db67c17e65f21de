"""Mask ratios, structured masks per axis, and the structured-first rule."""

import pytest
import torch

from maestro.model.masking import (
    StructuredMaskProbs,
    random_masking,
    sequence_mask_ratio,
    structured_mask,
)


def test_sequence_mask_ratio_formula():
    assert sequence_mask_ratio(0.75, 0.0, 40) == pytest.approx(0.75)
    assert sequence_mask_ratio(0.75, 1.0, 4) == pytest.approx(1 - 0.25 / 4)
    assert sequence_mask_ratio(0.75, 0.5, 16) == pytest.approx(1 - 0.25 / 4)


def test_random_masking_exact_count_and_order():
    torch.manual_seed(0)
    struct = torch.zeros(64, 50, dtype=torch.bool)
    ids_keep, mask = random_masking(struct, 37)
    assert ids_keep.shape == (64, 13)
    assert torch.all(mask.sum(1) == 37)
    assert torch.all(ids_keep[:, 1:] > ids_keep[:, :-1])  # original order
    assert torch.all(~mask.gather(1, ids_keep))


def test_random_masking_is_uniform():
    torch.manual_seed(1)
    _, mask = random_masking(torch.zeros(20000, 10, dtype=torch.bool), 3)
    freq = mask.float().mean(0)
    assert torch.allclose(freq, torch.full((10,), 0.3), atol=0.02)


def test_structured_tokens_are_masked_first():
    torch.manual_seed(2)
    struct = torch.zeros(500, 20, dtype=torch.bool)
    struct[:, :5] = True
    _, mask = random_masking(struct, 8)
    assert torch.all(mask[:, :5])  # all structured tokens masked
    assert torch.all(mask[:, 5:].sum(1) == 3)  # the rest of the budget at random
    _, mask = random_masking(struct, 3)  # budget smaller than the structured set
    assert torch.all(mask[:, 5:] == 0)
    assert torch.all(mask[:, :5].sum(1) == 3)


def test_structured_mask_axes_and_rates():
    torch.manual_seed(3)
    b, g, t, n = 4000, 3, 5, 6
    m = structured_mask(b, g, t, n, StructuredMaskProbs(dates=0.25), torch.device("cpu"))
    # a date drop hides all groups and locations of that date
    per_date = m.all(dim=(1, 3))
    assert torch.equal(per_date, m.any(dim=(1, 3)))
    assert abs(per_date.float().mean().item() - 0.25) < 0.02
    m = structured_mask(b, g, t, n, StructuredMaskProbs(locations=0.25), torch.device("cpu"))
    per_loc = m.all(dim=(1, 2))
    assert torch.equal(per_loc, m.any(dim=(1, 2)))
    assert abs(per_loc.float().mean().item() - 0.25) < 0.02
    m = structured_mask(b, g, t, n, StructuredMaskProbs(bands=0.5), torch.device("cpu"))
    per_band = m.all(dim=(2, 3))
    assert torch.equal(per_band, m.any(dim=(2, 3)))
    assert abs(per_band.float().mean().item() - 0.5) < 0.02
    m = structured_mask(b, g, t, n, StructuredMaskProbs(modality=0.25), torch.device("cpu"))
    whole = m.flatten(1)
    assert torch.equal(whole.all(1), whole.any(1))
    assert abs(whole.all(1).float().mean().item() - 0.25) < 0.02


def test_single_date_and_single_group_skip_their_terms():
    probs = StructuredMaskProbs(bands=1.0, dates=1.0)
    m = structured_mask(100, 1, 1, 4, probs, torch.device("cpu"))
    assert not m.any()
