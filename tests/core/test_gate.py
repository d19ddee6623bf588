"""The PI-controlled gate: target tracking, step recovery, anti-windup, determinism, unbiasedness, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ast_robot.config import ConfigError
from ast_robot.config.gate import GateConfig
from ast_robot.core.gate import Gate


def _stream(batches: int, mean_of, batch: int = 256, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    for b in range(batches):
        yield (torch.randn(batch, generator=gen) * 0.15 + mean_of(b)).clamp(0, 1)


def _run(gate: Gate, stream) -> list[float]:
    return [float(gate(s)[0].float().mean()) for s in stream]


@pytest.mark.parametrize("target", [0.05, 0.1, 0.3, 0.6])
def test_tracks_target_on_drifting_stream(target):
    rates = _run(Gate(GateConfig(target_rate=target)), _stream(600, lambda b: 0.3 + 0.4 * b / 600))
    steady = sum(rates[200:]) / len(rates[200:])
    assert abs(steady - target) < 0.01, steady


def test_recovers_from_step_change():
    gate = Gate(GateConfig(target_rate=0.3))
    rates = _run(gate, _stream(700, lambda b: 0.2 if b < 300 else 0.8))
    before, just_after, recovered = rates[200:300], rates[300:305], rates[400:700]
    assert abs(sum(before) / 100 - 0.3) < 0.015
    assert sum(just_after) / 5 > 0.6  # the step pushed the rate far off target...
    assert abs(sum(recovered) / 300 - 0.3) < 0.015  # ...and the controller brought it back


def test_anti_windup_keeps_integral_bounded_and_recovers_fast():
    cfg = GateConfig(target_rate=0.3, threshold_max=0.8)
    gate = Gate(cfg)
    _run(gate, _stream(300, lambda b: 1.0))  # all scores 1: even the max threshold keeps ~88%
    assert gate.threshold == pytest.approx(cfg.threshold_max)
    # The integral stopped growing when the output hit its bound (it would reach the clamp otherwise).
    assert cfg.initial_threshold + cfg.ki * gate.integral <= cfg.threshold_max + cfg.ki
    assert gate.integral < cfg.integral_limit / 2
    rates = _run(gate, _stream(150, lambda b: 0.5))
    assert sum(rates[:3]) / 3 < 0.6  # reacts at once instead of unwinding a huge integral
    assert abs(sum(rates[50:]) / 100 - 0.3) < 0.02


def test_deterministic_under_seed_and_state_dict_round_trip():
    scores = list(_stream(50, lambda b: 0.5))
    a, b = Gate(GateConfig(), seed=7), Gate(GateConfig(), seed=7)
    assert all(torch.equal(a(s)[0], b(s)[0]) for s in scores[:20])
    c = Gate(GateConfig(), seed=99)
    c.load_state_dict(a.state_dict())
    for s in scores[20:]:
        ka, wa = a(s)
        kc, wc = c(s)
        assert torch.equal(ka, kc) and torch.equal(wa, wc)
    assert a.threshold == c.threshold


def test_importance_weights_give_unbiased_gradient():
    torch.manual_seed(0)
    n, d = 64, 5
    x, y = torch.randn(n, d), torch.randn(n)
    w = torch.randn(d, requires_grad=True)
    per_sample = lambda: (x @ w - y) ** 2  # noqa: E731
    full = torch.autograd.grad(per_sample().mean(), w)[0]
    scores = torch.rand(n)
    gate = Gate(GateConfig(target_rate=0.3, kp=0.0, ki=0.0, initial_threshold=0.6), seed=1)
    trials, estimates = 4000, []
    for _ in range(trials):
        keep, weights = gate(scores)
        estimates.append(torch.autograd.grad((weights * per_sample()).sum() / n, w)[0])
    est = torch.stack(estimates)  # (trials, d)
    stderr = est.std(0) / trials**0.5
    z = (est.mean(0) - full) / stderr
    assert z.abs().max() < 4.0, z  # unbiased: mean within 4 standard errors, every coordinate
    # Without the 1/p weights the same estimator is clearly biased.
    gate_nw = Gate(GateConfig(target_rate=0.3, kp=0.0, ki=0.0, initial_threshold=0.6, importance_weights=False))
    biased = torch.stack([torch.autograd.grad((gate_nw(scores)[1] * per_sample()).sum() / n, w)[0] for _ in range(500)])
    assert ((biased.mean(0) - full).abs() / stderr).max() > 10


def test_top_fraction_min_keep_and_energy_budget():
    scores = torch.linspace(0, 1, 100)
    keep, weights = Gate(GateConfig(mode="top_fraction", target_rate=0.1))(scores)
    assert keep.sum() == 10 and keep[-10:].all() and torch.equal(weights, keep.float())
    keep, _ = Gate(GateConfig(initial_threshold=5.0, threshold_max=6.0, min_keep=3, min_probability=0.0))(scores)
    assert keep.sum() == 3 and keep[-3:].all()
    budget = Gate(GateConfig(target_rate=0.9, energy_budget=100.0))  # 100 per 1,000 seen = 10%
    kept = sum(int(budget(torch.rand(100))[0].sum()) for _ in range(50))
    assert kept <= 50 * 10


def test_disabled_gate_keeps_everything():
    keep, weights = Gate(GateConfig(enabled=False))(torch.rand(17))
    assert keep.all() and torch.equal(weights, torch.ones(17))


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [("target_rate", 0.0, "gate.target_rate"), ("target_rate", 1.5, "gate.target_rate"),
     ("kp", -0.1, "gate.kp"), ("ki", -1.0, "gate.ki"), ("temperature", -1.0, "gate.temperature")],
)  # fmt: skip
def test_bad_settings_rejected(field, value, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        Gate(dataclasses.replace(GateConfig(), **{field: value}))
    assert repr(value) in str(info.value)


def test_bad_bounds_and_scores_rejected():
    with pytest.raises(ValueError, match="threshold_max"):
        GateConfig(threshold_min=1.0, threshold_max=0.5)
    with pytest.raises(ValueError, match="1-D"):
        Gate(GateConfig())(torch.rand(3, 4))
    with pytest.raises(TypeError, match="GateConfig"):
        Gate({"target_rate": 0.3})


def test_from_sundew_config_maps_fields():
    sundew = pytest.importorskip("sundew")
    scfg = sundew.SundewConfig(target_activation_rate=0.15, activation_threshold=0.55, gate_temperature=0.05)
    gate = Gate.from_sundew_config(scfg)
    assert gate.cfg.target_rate == 0.15 and gate.threshold == 0.55 and gate.cfg.temperature == 0.05
    assert gate.cfg.ema == pytest.approx(1 - scfg.ema_alpha)
    with pytest.raises(TypeError, match="SundewConfig"):
        Gate.from_sundew_config(object())
