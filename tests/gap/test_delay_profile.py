"""The delay scan of gap.delay_profile on known loss curves: it finds the minimum at physics-step resolution
wherever it lies within one whole step of the fit's latency, asks for no negative delay, and leaves the replay's
resolution as it found it. The replays themselves are tested in test_reach_sub_step.py (real MuJoCo twins)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ast_robot.gap.delay_profile import scan_delay

STEP = 0.05  # one physics step (2 ms) in env steps (40 ms)


def _replay():
    return SimpleNamespace(model=SimpleNamespace(opt=SimpleNamespace(timestep=0.002)), env_dt=0.04,
                           fractional_latency=False)  # fmt: skip


def _fit(latency: float):
    return SimpleNamespace(names=("actuator_gain", "latency"), mean=(1.0, latency))


@pytest.mark.parametrize(("truth", "whole"), [(0.5, 0.0), (0.0, 0.0), (1.5, 1.0), (3.0, 3.0), (0.25, 1.0), (0.85, 0.0)])
def test_the_scan_finds_the_minimum_at_physics_step_resolution(truth, whole):
    asked = []
    replay = _replay()

    def loss(delay: float) -> float:
        asked.append(delay)
        assert replay.fractional_latency  # the scan asks at physics-step resolution
        return (delay - truth) ** 2 + 0.1 * abs(delay - truth)  # a kink at the minimum, as a noise-free replay's

    best, value, step = scan_delay(replay, _fit(whole), loss)
    assert step == pytest.approx(STEP) and best == pytest.approx(truth, abs=1e-9) and value == pytest.approx(0.0, abs=1e-12)
    assert min(asked) >= 0.0 and replay.fractional_latency is False
    assert len(asked) <= 9 + 8  # the quarter steps and a few physics steps, not every physics step of the window


def test_a_flat_loss_gives_the_fits_own_whole_step():
    """Null case: a loss no delay changes (nothing to find) returns the delay the coarse grid tried first."""
    best, _, _ = scan_delay(_replay(), _fit(2.0), lambda d: 1.0)
    assert best == pytest.approx(2.0)
