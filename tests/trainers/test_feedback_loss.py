"""Physical feedback as a per-demonstration BC loss weight (issue 21): the weights' invariants, their null cases
(no culprit or uniform scores: every weight exactly 1), hostile inputs, and real BC losses on real expert
demonstrations (MuJoCo reach) that change with the weights and do not without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.gap.weights import PhysicalWeights
from ast_robot.trainers.feedback import loss_weights

ROOT = Path(__file__).resolve().parents[2]


def test_weights_average_one_over_the_steps_never_drop_below_one_minus_mix_and_obey_the_cap():
    rng = np.random.default_rng(0)
    log_raw, counts = rng.normal(0, 3, 200), rng.integers(1, 80, 200)
    w = loss_weights(log_raw, counts, mix=0.5, cap=10)
    assert np.average(w, weights=counts) == pytest.approx(1.0)
    assert w.min() >= 0.5 - 1e-12 and w.max() <= 0.5 + 0.5 * 10 + 1e-9
    assert np.all(np.diff(w[np.argsort(log_raw)]) >= -1e-12)  # monotone in the score
    # the session-11 case: the pool drawn far from the fit (log score ~ -1e4, exp underflows to 0) and the round's
    # new demos at the fitted mass; the new demos carry the loss, the pool keeps half its share
    fit = PhysicalWeights(("object_mass",), (0.2,), (0.01,), 0.3, "sysid posterior")
    draws = [{"object_mass": m} for m in rng.uniform(0.7, 1.3, 700)] + [{"object_mass": m} for m in rng.uniform(0.19, 0.21, 100)]
    assert fit(draws[0]) == 0.0 and np.isfinite(fit.log_weight(draws[0]))  # the bump underflows; its log does not
    w = loss_weights([fit.log_weight(d) for d in draws], [80] * 800)
    assert w[:700] == pytest.approx(0.5) and w[700:].min() > 3 and w.mean() == pytest.approx(1.0)


def test_null_cases_no_culprit_or_uniform_scores_give_weight_one_exactly():
    assert loss_weights([-2.0] * 5, [3, 1, 4, 1, 5]).tolist() == [1.0] * 5  # uniform scores: no reweighting
    assert loss_weights([float("-inf")] * 3).tolist() == [1.0] * 3  # every score 0: no information
    assert loss_weights([0.0]).tolist() == [1.0]  # one episode
    assert loss_weights([-9.0, 0.0], mix=0.0).tolist() == [1.0, 1.0]  # feedback_mix 0: off


def test_hostile_scores_stay_finite_and_positive_and_bad_input_is_one_line():
    w = loss_weights([float("nan"), -1.0, float("-inf"), -1e300, 0.0], [2, 2, 2, 2, 2])
    assert np.isfinite(w).all() and (w > 0).all() and w[0] == 1.0  # unknown (NaN draws): neutral
    assert loss_weights([float("nan")] * 4).tolist() == [1.0] * 4
    fit = PhysicalWeights(("friction",), (1.0,), (0.1,), 0.5)
    assert np.isnan(fit.log_weight({"payload": 1.0})) and np.isnan(fit.log_weight({"friction": float("nan")}))
    cases = [(([],), "no episodes to weigh"), (([0.0, 1.0], [1]), "2 scores but 1 step counts"),
             (([0.0], [0]), "step counts must be finite and > 0"), (([float("inf")],), r"\+inf"),
             (([0.0], None, 1.0), r"^train.feedback_mix: 1.0 is not in \[0, 1\)"),
             (([0.0], None, 0.5, 0.5), r"^train.feedback_cap: 0.5 must be a finite number >= 1")]  # fmt: skip
    for args, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            loss_weights(*args)
        assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def reach():
    """Four real scripted-expert reach demonstrations (MuJoCo) and a policy for them."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.policies.policy import build_policy
    from ast_robot.trainers.bc import collect_episodes

    cfg = load_config(ROOT / "configs/experiments/reach_ur5e.yaml", ["seed=0"])
    env = make_env(cfg.env, cfg.randomization, seed=0)
    episodes = collect_episodes(env, 4, seed=11)
    torch.manual_seed(0)
    policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
    keys = list(env.observation_space.spaces)
    env.close()
    return episodes, keys, policy


def _losses(reach, physical_weight) -> tuple[torch.Tensor, object, object]:
    from ast_robot.trainers.bc import DemoData, bc_loss

    episodes, keys, policy = reach
    data = DemoData.from_episodes(episodes, keys, physical_weight=physical_weight)
    policy.normalizer.fit({k: v for k, v in data.obs.items()})
    policy.eval()
    with torch.no_grad():
        out = bc_loss(policy, data.get(torch.arange(len(data))))
    return out.losses, out, data


def test_the_weights_change_the_bc_loss_and_without_feedback_nothing_changes(reach):
    plain, out, data = _losses(reach, None)
    assert data.physical is None and out.physical is None
    # uniform feedback (the nominal twin: no culprit located) trains exactly as none
    uniform, out, data = _losses(reach, lambda dr: 0.3)
    assert torch.equal(uniform, plain) and torch.equal(data.physical, torch.ones(len(data)))
    # a bump on one parameter: each step's loss times its episode's weight, mean 1 over the steps
    episodes = reach[0]
    name = "friction" if "friction" in episodes[0].dr else sorted(episodes[0].dr)[0]
    values = [ep.dr[name] for ep in episodes]
    fit = PhysicalWeights((name,), (values[0],), (0.5 * (np.ptp(values) or 1.0),), 0.4, "test")
    weighted, out, data = _losses(reach, fit)
    assert out.physical is None  # one path: the loss, not the gate's physical component as well
    w = data.physical
    assert float(w.mean()) == pytest.approx(1.0, abs=1e-5) and float(w.min()) >= 0.5 - 1e-6
    assert float(w.max()) > 1.0 and torch.allclose(weighted, plain * w, rtol=1e-5, atol=1e-7)
    assert float(weighted.mean()) != pytest.approx(float(plain.mean()), rel=1e-4)
