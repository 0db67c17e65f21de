"""Learning-rate scaling, the one-cycle schedule, parameter groups and EMA."""

import itertools
import math

import pytest
import torch
from torch import nn

from maestro.train.config import PAPER_PHASES, phase_config
from maestro.train.ema import EMA, ema_momentum
from maestro.train.optim import build_optimizer, build_scheduler, one_cycle, scaled_lr


def test_lr_scaling_rule_matches_spec_table():
    for batch, pre, down in (
        (32, 9.80e-5, 3.27e-5),
        (64, 1.39e-4, 4.62e-5),
        (256, 2.77e-4, 9.24e-5),
    ):
        assert scaled_lr(3e-5, batch) == pytest.approx(pre, rel=5e-3)
        assert scaled_lr(1e-5, batch) == pytest.approx(down, rel=5e-3)


def test_one_cycle_shape():
    total, warm = 100, 20
    lrs = [one_cycle(s, total, 0.2, 1000.0, 1e7) for s in range(total + 1)]
    assert lrs[0] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == warm
    assert all(a <= b for a, b in itertools.pairwise(lrs[: warm + 1]))  # warm-up rises
    assert all(a >= b for a, b in itertools.pairwise(lrs[warm:]))  # then decays
    assert lrs[total] == pytest.approx(1e-7)
    # cosine: half-way through the decay the multiplier is the mean of start and end
    mid = warm + (total - warm) // 2
    assert lrs[mid] == pytest.approx((1 + 1e-7) / 2, rel=1e-6)
    assert one_cycle(total, total, 0.2, 1000.0, 2.0) == pytest.approx(0.5)  # fine-tune ends at lr/2


def test_scheduler_steps_the_optimizer_lr():
    model = nn.Linear(3, 3)
    opt = build_optimizer(model, 1.0, (0.9, 0.99), 0.01)
    sched = build_scheduler(opt, 10, 0.2, 1000.0, 1e7)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(1e-3) and seen[2] == pytest.approx(1.0)


def test_no_weight_decay_on_norms_and_biases():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    opt = build_optimizer(model, 1e-3, (0.9, 0.99), 0.05)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert len(no_decay["params"]) == 3  # linear bias, LN weight and bias
    frozen = nn.Linear(2, 2)
    frozen.weight.requires_grad_(False)
    groups = build_optimizer(frozen, 1e-3, (0.9, 0.99), 0.01).param_groups
    assert sum(len(g["params"]) for g in groups) == 1


def test_ema_momentum_and_update():
    assert ema_momentum(100) == pytest.approx(0.95)
    assert ema_momentum(10) == pytest.approx(0.5)
    assert ema_momentum(3) == 0.0
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    ema = EMA(model, 0.5)
    nn.init.constant_(model.weight, 3.0)
    ema.update(model)
    assert ema.model.weight.item() == pytest.approx(2.0)
    assert not ema.model.weight.requires_grad


def test_phase_overrides_and_paper_defaults():
    assert PAPER_PHASES["finetune"].final_factor == 2.0 and PAPER_PHASES["finetune"].patience == 5
    p = phase_config("pretrain", {"epochs": 3, "betas": [0.8, 0.9]})
    assert p.epochs == 3 and p.betas == (0.8, 0.9) and p.base_lr == 3e-5
    with pytest.raises(TypeError, match="unknown phase settings"):
        phase_config("pretrain", {"epochz": 3})
    assert math.isclose(phase_config("probe").base_lr, 1e-5)
