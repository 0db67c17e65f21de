"""Optional TensorBoard scalars of the training histories."""

import sys

import pytest

from maestro.train.tensorboard import FOLDER, ScalarLog


def test_rows_become_scalars_per_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = ScalarLog(tmp_path)
    log.add({"epoch": 0, "loss": 0.9, "lr": 1e-3, "time_s": 2.5, "note": "x"})
    log.add({"epoch": 1, "loss": 0.7, "lr": 5e-4, "time_s": 2.4, "val_miou": float("nan")})
    log.close()
    log.close()  # twice: a no-op
    acc = EventAccumulator(str(tmp_path / FOLDER))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["loss", "lr", "time_s"]  # no text, no NaN
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [0, 1]
    assert [round(e.value, 6) for e in loss] == [0.9, 0.7]
    with pytest.raises(RuntimeError, match="closed"):
        log.add({"epoch": 2, "loss": 0.5})


def test_missing_package_is_a_clear_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[tensorboard\]'"):
        ScalarLog(tmp_path)


def test_pretraining_with_tensorboard_logs_every_epoch(small_stores, catalog_small, tmp_path):
    import dataclasses

    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from maestro.experiment import job_phase, model_config
    from maestro.train.pretrain import run_pretrain
    from maestro.train.runtime import make_runtime

    from .conftest import job

    rt = dataclasses.replace(make_runtime("cpu"), tensorboard=True)
    j = job({"epochs": 2, "batch_size": 4, "base_lr": 1e-3, "max_steps_per_epoch": 2})
    ds = catalog_small.dataset("treesatai_ts")
    out = tmp_path / "pre"
    run_pretrain(small_stores["treesatai_ts"], ds, model_config(j), job_phase("pretrain", j),
                 0, out, rt)  # fmt: skip
    acc = EventAccumulator(str(out / FOLDER))
    acc.Reload()
    history = pd.read_csv(out / "history.csv")
    logged = acc.Scalars("loss")
    assert [e.step for e in logged] == list(history["epoch"])  # the same rows as history.csv
    assert [round(e.value, 5) for e in logged] == [round(v, 5) for v in history["loss"]]
