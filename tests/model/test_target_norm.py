"""Patch-group-wise normalization against NumPy, and the masked loss."""

import numpy as np
import torch

from maestro.model.loss import masked_loss
from maestro.model.patchify import patches
from maestro.model.target_norm import denormalize_patches, normalize_patches


def numpy_group_norm(x, groups, eps):
    out = np.empty_like(x)
    b, t, n, _, _ = x.shape
    for idx in groups:
        for i in range(b):
            for j in range(t):
                for k in range(n):
                    v = x[i, j, k][:, list(idx)]
                    ddof = 1 if v.size > 1 else 0
                    out[i, j, k][:, list(idx)] = (v - v.mean()) / np.sqrt(v.var(ddof=ddof) + eps)
    return out


def test_patch_group_norm_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(2, 3, 4, 9, 10)).astype(np.float64)
    groups = ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9))
    got = normalize_patches(torch.from_numpy(x), groups, 1e-6).numpy()
    np.testing.assert_allclose(got, numpy_group_norm(x, groups, 1e-6), rtol=1e-10, atol=1e-10)


def test_patch_norm_is_one_group_and_none_is_identity():
    x = torch.randn(1, 2, 3, 4, 5, dtype=torch.float64)
    one = normalize_patches(x, (tuple(range(5)),))
    flat = one.reshape(1, 2, 3, 20)
    torch.testing.assert_close(flat.mean(-1), torch.zeros(1, 2, 3, dtype=torch.float64))
    ones = torch.ones(1, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(flat.std(-1), ones, atol=1e-5, rtol=0)
    assert normalize_patches(x, None) is x


def test_single_value_group_has_zero_variance_not_nan():
    x = torch.randn(1, 1, 2, 1, 3)  # one pixel per patch, one band in the last group
    out = normalize_patches(x, ((0, 1), (2,)))
    assert torch.isfinite(out).all()
    assert torch.all(out[..., 2] == 0)


def test_patches_layout():
    img = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 1, 2, 4, 4)
    p = patches(img, 2)
    assert p.shape == (1, 1, 4, 4, 2)
    # token 1 = top-right 2x2 block of channel 0: pixels (0,2),(0,3),(1,2),(1,3)
    torch.testing.assert_close(p[0, 0, 1, :, 0], torch.tensor([2.0, 3.0, 6.0, 7.0]))


def test_masked_loss_ignores_visible_tokens():
    torch.manual_seed(0)
    target = torch.randn(2, 2, 3, 4, 4)
    pred = torch.randn(2, 2, 3, 4, 4, requires_grad=True)
    mask = torch.zeros(2, 1, 2, 4, dtype=torch.bool)  # one token group, 2 dates, 2x2 tokens
    mask[0, 0, 1, 2] = True
    loss, count = masked_loss(pred, target, mask, (3,), 2, None, "l1")
    loss.backward()
    grad = pred.grad
    # only the 2x2 pixels of token 2 (bottom-left) of date 1 of sample 0 receive gradient
    expected = torch.zeros_like(grad, dtype=torch.bool)
    expected[0, 1, :, 2:4, 0:2] = True
    assert torch.all(grad[~expected] == 0)
    assert torch.all(grad[expected] != 0)
    assert int(count) == 3 * 4
    manual = (pred[0, 1, :, 2:4, 0:2] - target[0, 1, :, 2:4, 0:2]).abs().mean()
    torch.testing.assert_close(loss, manual)


def test_masked_loss_token_groups_mask_their_own_bands():
    target = torch.zeros(1, 1, 3, 2, 2)
    pred = torch.ones(1, 1, 3, 2, 2)
    mask = torch.tensor([[[[True]], [[False]]]])  # groups (2 bands, 1 band): only group 0 masked
    loss, count = masked_loss(pred, target, mask, (2, 1), 2, None, "l2")
    assert int(count) == 2 * 4
    assert float(loss) == 1.0


def test_denormalize_inverts_normalize():
    x = torch.randn(2, 2, 3, 4, 5, dtype=torch.float64) * 3 + 1
    groups = ((0, 1), (2, 3, 4))
    back = denormalize_patches(normalize_patches(x, groups), x, groups)
    torch.testing.assert_close(back, x)
    assert denormalize_patches(x, x, None) is x


def test_contiguous_and_gathered_groups_give_the_same_targets():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, size=(2, 2, 3, 4, 6))
    # the same partition as ranges (sliced) and out of order (gathered)
    ranges = normalize_patches(torch.from_numpy(x), ((0, 1), (2, 3, 4), (5,)), 1e-6).numpy()
    shuffled = normalize_patches(torch.from_numpy(x), ((2, 3, 4), (0, 1), (5,)), 1e-6).numpy()
    np.testing.assert_allclose(ranges, shuffled, rtol=1e-12, atol=1e-12)
    scattered = ((0, 3), (1, 4), (2, 5))
    got = normalize_patches(torch.from_numpy(x), scattered, 1e-6).numpy()
    np.testing.assert_allclose(got, numpy_group_norm(x, scattered, 1e-6), rtol=1e-10, atol=1e-10)
