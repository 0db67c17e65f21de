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


def test_concat_keeps_one_vector_per_modality_group_and_date():
    torch.manual_seed(2)
    feats = {"a": torch.randn(4, 1, 3, 4, 8), "b": torch.randn(4, 2, 1, 9, 8)}  # 3 + 2 slots
    head = ClassificationHead(8, 5, "concat", norm="none", slots=5)
    slots = torch.cat([feats["a"].mean(3).flatten(1, 2), feats["b"].mean(3).flatten(1, 2)], 1)
    torch.testing.assert_close(head(feats), head.fc(slots.flatten(1)))
    # a date's content reaches the classifier on its own: swapping two dates changes the logits
    swapped = {"a": feats["a"][:, :, [1, 0, 2]], "b": feats["b"]}
    assert not torch.allclose(head(feats), head(swapped))
    seg = SegmentationHead(8, 3, ref_grid=4, upscale=2, kind="concat", slots=7)
    out = seg({"s2": torch.randn(2, 1, 6, 16, 8), "spot": torch.randn(2, 1, 1, 25, 8)})
    assert out.shape == (2, 3, 8, 8)


def test_batch_norm_standardizes_pooled_features():
    torch.manual_seed(3)
    head = ClassificationHead(8, 2, "linear", norm="batch")
    # features that barely differ between samples (as frozen features on the demo do)
    base = torch.randn(1, 1, 1, 4, 8)
    feats = {"a": base + 3e-2 * torch.randn(16, 1, 1, 4, 8)}
    head.train()
    pooled = head.reduce(feats["a"].flatten(1, 3))
    assert pooled.std(0).max() < 0.05  # the raw pooled features hardly vary
    z = head.norm(pooled)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(8), atol=0.05, rtol=0)
    import pytest

    with pytest.raises(ValueError, match="unknown head feature norm"):
        ClassificationHead(8, 2, "linear", norm="layer")
    with pytest.raises(ValueError, match="unknown head"):
        ClassificationHead(8, 2, "max")
