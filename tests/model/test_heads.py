"""Heads: attentive pooling against a direct computation, pooling and segmentation shapes."""

import torch

from maestro.model.heads import AttentiveReduce, ClassificationHead, SegmentationHead


def test_attentive_reduce_matches_manual_attention():
    torch.manual_seed(0)
    pool = AttentiveReduce(16, heads=4)
    x = torch.randn(3, 7, 16)
    got = pool(x)
    kv = pool.to_kv(pool.norm_in(x))
    k, v = kv[..., :16], kv[..., 16:]
    q = pool.query
    outs = []
    for h in range(4):
        sl = slice(4 * h, 4 * h + 4)
        w = torch.softmax((k[..., sl] @ q[sl]) / 4**0.5, dim=1)  # scale (D / heads)^-0.5
        outs.append((w[..., None] * v[..., sl]).sum(1))
    torch.testing.assert_close(got, pool.norm_out(torch.cat(outs, -1)))
    assert got.shape == (3, 16)


def test_classification_pools_every_token():
    torch.manual_seed(1)
    head = ClassificationHead(8, 5, "linear")
    feats = {"a": torch.randn(2, 1, 3, 4, 8), "b": torch.randn(2, 2, 1, 9, 8)}
    mean = torch.cat([feats["a"].reshape(2, -1, 8), feats["b"].reshape(2, -1, 8)], 1).mean(1)
    torch.testing.assert_close(head(feats), head.fc(mean))


def test_segmentation_resamples_to_reference_grid_and_upsamples():
    head = SegmentationHead(8, 3, ref_grid=4, upscale=4)
    feats = {"s2": torch.randn(2, 1, 6, 16, 8), "spot": torch.randn(2, 1, 1, 25, 8)}  # 4x4, 5x5
    assert head(feats).shape == (2, 3, 16, 16)
