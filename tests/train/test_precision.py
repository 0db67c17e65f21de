"""``runtime.precision``: resolution, bf16 autocast on CPU, fp32 losses and weights."""

from __future__ import annotations

import logging

import pytest
import torch

from maestro.experiment import job_phase, model_config
from maestro.jobs import validate_job
from maestro.train import checkpoint, runtime
from maestro.train.build import build_mae
from maestro.train.downstream import run_downstream
from maestro.train.pretrain import run_pretrain
from maestro.train.runtime import make_runtime, resolve_precision
from maestro.utils.cpu import amx_flags, bf16_flags

from .conftest import job

CPU = torch.device("cpu")


def test_unset_precision_is_fp32_on_cpu_and_explicit_values_are_kept():
    assert resolve_precision(None, CPU) == "fp32"
    assert resolve_precision("fp32", CPU) == "fp32"
    assert make_runtime("cpu").amp is False
    rt = make_runtime("cpu", precision="bf16")
    assert rt.precision == "bf16" and rt.describe()["precision"] == "bf16"
    with pytest.raises(ValueError, match=r"runtime\.precision must be one of .* .fp16."):
        resolve_precision("fp16", CPU)


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_cpu_features(monkeypatch, caplog, native):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: native)
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    with caplog.at_level(logging.WARNING, logger="maestro.train.runtime"):
        assert resolve_precision("bf16", CPU) == "bf16"  # asked for: kept, but said
    assert ("emulated" in caplog.text) is (not native)


def test_cpu_flags_are_read_as_whole_words():
    assert bf16_flags("flags : fpu avx512f avx512_bf16 avx512_vnni")
    assert bf16_flags("flags : fpu amx_tile amx_bf16")
    assert not bf16_flags("flags : fpu avx512f avx512_vnni avx512_fp16")
    assert amx_flags("flags : fpu amx_tile amx_bf16 amx_int8")
    assert not amx_flags("flags : fpu avx512_bf16 amx_tile")  # AVX512-BF16 alone: no AMX


def test_the_job_schema_takes_the_precisions_and_refuses_others():
    for value in ("auto", "fp32", "bf16"):
        validate_job({"runtime": {"precision": value}})
    with pytest.raises(ValueError, match=r"runtime\.precision: .fp16. is not one of"):
        validate_job({"runtime": {"precision": "fp16"}})


def test_schema_and_cli_list_the_same_precisions_as_the_runtime():
    """Three places name the precisions (the runtime, the job schema, the CLI, which must not
    import torch to parse its arguments): they stay one list."""
    import yaml

    from maestro.cli import build_parser
    from maestro.jobs import SCHEMA_PATH

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    enum = schema["properties"]["runtime"]["properties"]["precision"]["enum"]
    assert tuple(enum) == runtime.PRECISIONS
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("pretrain", "downstream"):
        opt = next(a for a in sub.choices[name]._actions if a.dest == "precision")
        assert tuple(opt.choices) == runtime.PRECISIONS, name


def _batch(ds, n=2):
    from tests.model.conftest import make_batch

    return make_batch(ds, batch=n, seed=0)


def test_bf16_mae_forward_predicts_in_bf16_and_keeps_the_loss_fp32(catalog_small):
    ds = catalog_small.dataset("treesatai_ts")
    torch.manual_seed(0)
    model = build_mae(model_config(job()), ds)  # decoder narrower than the encoder
    batch = _batch(ds)
    torch.manual_seed(1)
    ref = model(batch).loss
    with make_runtime("cpu", precision="bf16").autocast():
        torch.manual_seed(1)  # the same masks
        out = model(batch)
    assert all(p.dtype == torch.bfloat16 for p in out.preds.values())
    assert out.loss.dtype == torch.float32
    assert abs(out.loss.item() - ref.item()) < 0.02 * ref.item()
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("dataset", ["treesatai_ts", "pastis_hd"])
def test_bf16_training_ends_near_fp32_with_fp32_weights(small_stores, catalog_small, tmp_path,
                                                         dataset):  # fmt: skip
    ds = catalog_small.dataset(dataset)
    store = small_stores[dataset]
    j = job({"epochs": 2, "batch_size": 4, "base_lr": 1e-3, "max_steps_per_epoch": 2})
    losses = {}
    for prec in ("fp32", "bf16"):
        rt = make_runtime("cpu", precision=prec)
        out = tmp_path / prec
        m = run_pretrain(store, ds, model_config(j), job_phase("pretrain", j), 0, out / "pre", rt)
        losses[prec] = m["final_loss"]
        fine = run_downstream(
            "finetune", store, ds, job_phase("finetune", j), 0, out / "fine", rt,
            init=out / "pre" / "model.pt",
        )  # fmt: skip
        assert 0.0 <= fine["test"][ds.task.metric] <= 1.0
        state = checkpoint.load(out / "fine" / "model.pt")["state_dict"]
        floats = [v for v in state.values() if v.is_floating_point()]
        assert floats and all(v.dtype == torch.float32 for v in floats)  # master weights fp32
    assert losses["bf16"] != losses["fp32"]  # bf16 did run
    assert abs(losses["bf16"] - losses["fp32"]) < 0.02 * losses["fp32"]
