"""Fitting pretrained weights into another dataset's model: resampled patch kernels, a clear
error when nothing of the Transformer fits, and refused non-finite weights (T17)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maestro.train.transfer import check_finite, fit_state_dict, resample_kernel


def test_upsampled_kernel_computes_on_the_resized_patch_what_it_computed_before():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 3, 2, 2, generator=g, dtype=torch.float64)
    x = torch.randn(5, 3, 2, 2, generator=g, dtype=torch.float64)  # five 2-px patches
    w4 = resample_kernel(w, 4)
    assert w4.shape == (8, 3, 4, 4)
    x4 = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
    before = torch.einsum("nchw,dchw->nd", x, w)
    after = torch.einsum("nchw,dchw->nd", x4, w4)
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    # a constant patch gives the same response at the coarser size too
    w1 = resample_kernel(w, 1)
    ones = torch.ones(1, 3, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(
        torch.einsum("nchw,dchw->nd", ones[..., :1, :1], w1),
        torch.einsum("nchw,dchw->nd", ones, w),
    )


def _own() -> dict[str, torch.Tensor]:
    return {
        "patchify.s2.proj.0.weight": torch.zeros(4, 10, 4, 4),
        "patchify.s2.proj.0.bias": torch.zeros(4),
        "patchify.spot.proj.0.weight": torch.zeros(4, 3, 16, 16),
        "encoders.s2.blocks.0.attn.to_qkv.weight": torch.zeros(12, 4),
        "inter.blocks.0.attn.to_qkv.weight": torch.zeros(12, 4),
        "decoders.s2.blocks.0.attn.to_qkv.weight": torch.zeros(12, 4),
    }


def test_fit_resamples_kernels_and_reports_what_stays_at_init():
    own = _own()
    source = {
        "patchify.s2.proj.0.weight": torch.randn(4, 10, 2, 2),  # S2 patches of 2 px
        "patchify.s2.proj.0.bias": torch.randn(4),
        "encoders.s2.blocks.0.attn.to_qkv.weight": torch.randn(12, 4),
        "inter.blocks.0.attn.to_qkv.weight": torch.randn(12, 4),
        "patchify.aerial.proj.0.weight": torch.randn(4, 4, 8, 8),  # not in the target
    }
    loadable, report = fit_state_dict(source, own, "pre/model.pt")
    assert loadable["patchify.s2.proj.0.weight"].shape == (4, 10, 4, 4)
    assert torch.equal(
        loadable["inter.blocks.0.attn.to_qkv.weight"], source["inter.blocks.0.attn.to_qkv.weight"]
    )
    assert "patchify.aerial.proj.0.weight" not in loadable
    assert report["resampled"] == ["patchify.s2.proj.0.weight 2 -> 4 px"]
    assert report["left_at_init"] == ["patchify.spot"]  # the decoder is not the encoder's
    assert (report["tensors_loaded"], report["tensors"]) == (4, 6)
    spot = 4 * 3 * 16 * 16
    total = sum(v.numel() for k, v in own.items() if not k.startswith("decoders"))
    assert report["encoder_params_loaded"] == round(1 - spot / total, 4)


@pytest.mark.parametrize("source", ["prefixed", "empty", "other"])
def test_a_checkpoint_whose_transformer_does_not_fit_is_an_error(source):
    own = _own()
    state = {
        "prefixed": {f"module.{k}": v for k, v in own.items()},
        "empty": {},
        "other": {
            "patchify.s2.proj.0.weight": torch.randn(4, 10, 4, 4),
            "encoders.s2.blocks.0.attn.to_qkv.weight": torch.randn(24, 8),  # another width
        },
    }[source]
    with pytest.raises(ValueError, match=r"pre/model.pt: none of its \d+ tensors fits"):
        fit_state_dict(state, own, "pre/model.pt")


def test_non_finite_weights_are_refused_naming_the_tensors():
    state = {"a.weight": torch.ones(3), "b.weight": torch.tensor([1.0, float("nan")])}
    with pytest.raises(ValueError, match=r"m.pt: .*NaN or inf in 1 of 2 tensors \(e.g. b.weight\)"):
        check_finite(state, "m.pt")
    check_finite({"a.weight": torch.ones(3), "steps": torch.tensor(3)}, "m.pt")


def test_a_run_is_labelled_by_its_checkpoint_not_only_by_its_job(catalog_small):
    """An init checkpoint of another width, or pretrained on another dataset without a
    declared transfer, would be filed under the job's labels: refused (T19)."""
    from maestro.model import MAEConfig
    from maestro.train.transfer import check_init_labels

    ds = catalog_small.dataset("treesatai_ts")
    job_cfg = MAEConfig(embed_dim=24, depth=2, inter_depth=1, heads=2, dim_head=12)
    wide = {"model_cfg": job_cfg.replace(embed_dim=48), "pretrained_on": "treesatai_ts"}
    with pytest.raises(ValueError, match=r"m.pt: .*\(job, checkpoint\) \{'embed_dim': \(24, 48\)"):
        check_init_labels("m.pt", wide, ds, job_cfg, {"transfer_from": None})
    check_init_labels("m.pt", wide, ds, job_cfg, {"released": "IGNF/x"})  # its own architecture
    other = {"model_cfg": job_cfg, "pretrained_on": "pastis_hd"}
    with pytest.raises(ValueError, match=r"pretrained on 'treesatai_ts', found one of 'pastis_hd'"):
        check_init_labels("m.pt", other, ds, job_cfg, {"transfer_from": None})
    check_init_labels("m.pt", other, ds, job_cfg, {"transfer_from": "pastis_hd"})
    probe = {"model_cfg": job_cfg, "pretrained_on": None}  # a probe result, checked before
    check_init_labels("m.pt", probe, ds, job_cfg, {"transfer_from": "s2_naip"})
