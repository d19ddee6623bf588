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
    budget = Gate(GateConfig(target_rate=0.1, energy_budget=100.0, kp=0.0, ki=0.0))  # 100 per 1,000 seen
    kept = sum(int(budget(torch.rand(100))[0].sum()) for _ in range(50))  # the gate alone keeps ~half
    assert kept <= 50 * 10


def test_energy_budget_thins_at_random_and_keeps_the_weights_unbiased():
    """A fixed threshold keeps ~50%, the budget allows 30%: the kept are thinned and their p lowered."""
    losses = torch.rand(100, generator=torch.Generator().manual_seed(0)) * 2
    scores = losses / 2  # high-loss samples score high: dropping the lowest scores would bias the mean up
    gate = Gate(GateConfig(target_rate=0.3, energy_budget=300.0, kp=0.0, ki=0.0, initial_threshold=0.5), seed=3)
    estimates = []
    for _ in range(3000):
        keep, weights = gate(scores)
        assert int(keep.sum()) <= 31  # the cap (credit 30 per batch, plus a fraction carried over)
        estimates.append(float((weights * losses).sum()) / len(losses))
    est = torch.tensor(estimates)
    assert abs(float(est.mean()) - float(losses.mean())) < 4 * float(est.std()) / len(est) ** 0.5


def test_controller_tracks_the_gate_not_the_overrides():
    """With a budget at the target rate the threshold settles inside its bounds (no wind-up)."""
    gate = Gate(GateConfig(target_rate=0.3, energy_budget=300.0), seed=0)
    thresholds = []
    for b in range(400):
        gate(torch.rand(200, generator=torch.Generator().manual_seed(b)))
        thresholds.append(gate.threshold)
    late = torch.tensor(thresholds[200:])
    assert gate.cfg.threshold_min < float(late.min()) and float(late.max()) < gate.cfg.threshold_max
    assert abs(gate.integral) < 0.5 * gate.cfg.integral_limit
    assert abs(gate.activation_rate - 0.3) < 0.03


@pytest.mark.parametrize(
    ("settings", "needle"),
    [({"target_rate": 0.3, "energy_budget": 200.0}, "energy_budget 200 per 1,000 is below gate.target_rate"),
     ({"energy_budget": 0.0}, "energy_budget 0.0: expected kept samples per 1,000"),
     ({"target_rate": 0.01}, "target_rate 0.01 must exceed gate.min_probability 0.02")],
)  # fmt: skip
def test_unreachable_rates_are_config_errors(settings, needle):
    with pytest.raises(ValueError, match=needle):
        GateConfig(**settings)


def test_min_keep_above_the_target_share_of_a_batch_is_rejected():
    gate = Gate(GateConfig(target_rate=0.1, min_keep=8))
    gate.check_batch_size(80)  # 8 <= 0.1 * 80
    with pytest.raises(ValueError, match=r"gate.min_keep 8 exceeds gate.target_rate \* batch size \(0.1 \* 64"):
        gate.check_batch_size(64)


def test_a_gate_gates_whatever_gate_enabled_says():
    """``gate.enabled`` is the run's switch (config.gate.is_gated decides whether a trainer builds a gate);
    a Gate object always gates, so GatedSAC's step gate and hand-built gates need no switch of their own."""
    keep, _ = Gate(GateConfig(enabled=False, mode="top_fraction", target_rate=0.25))(torch.rand(16))
    assert int(keep.sum()) == 4


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


def test_gate_from_sundew_maps_fields():
    sundew = pytest.importorskip("sundew")
    from ast_robot.integrations.sundew import gate_from_sundew

    scfg = sundew.SundewConfig(target_activation_rate=0.15, activation_threshold=0.55, gate_temperature=0.05)
    gate = gate_from_sundew(scfg)
    assert gate.cfg.target_rate == 0.15 and gate.threshold == 0.55 and gate.cfg.temperature == 0.05
    assert gate.cfg.ema == pytest.approx(1 - scfg.ema_alpha)
    _, weights = gate(torch.full((1000,), -5.0))  # far below the threshold: only the floor keeps any
    assert gate.cfg.min_probability == 0.02 and float(weights.max()) <= 1 / 0.02 + 1e-6  # finite 1/p weights
    with pytest.raises(TypeError, match="SundewConfig"):
        gate_from_sundew(object())
