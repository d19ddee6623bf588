"""The analyzer on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config.gap import GapConfig
from ast_robot.gap.analyzer import analyze
from ast_robot.gap.stats import newcombe_difference, wilson_interval
from tests.gap.helpers import make_record


def _population(n: int, source: str, p_success: float, error_shift: float, seed: int, friction=(0.5, 1.5)):
    """Records whose success and final error follow known distributions; failures happen at high friction."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mu = float(rng.uniform(*friction))
        ok = bool(rng.random() < p_success)
        err = abs(float(rng.normal(0.02 + error_shift, 0.005)))
        rand = {"friction": mu, "payload": float(rng.uniform(0, 1))} if source == "sim" else {}
        out.append(make_record(seed=seed * 1000 + i, source=source, success=ok, final_error=err,
                               path_length=float(rng.normal(0.5, 0.05)), randomization=rand))  # fmt: skip
    return out


def test_wilson_and_newcombe_match_published_values():
    # Newcombe (1998), Table II example: 56/70 vs 48/80 -> difference 0.2, interval (0.0524, 0.3339).
    d = newcombe_difference(56, 70, 48, 80)
    assert d.value == pytest.approx(0.2)
    assert (d.low, d.high) == pytest.approx((0.0524, 0.3339), abs=5e-4)
    w = wilson_interval(0, 10)  # Wilson never collapses at 0 successes
    assert w.low == 0.0 and w.high == pytest.approx(0.2775, abs=5e-4)


def test_known_gap_and_shift_are_recovered():
    sim = _population(300, "sim", 0.9, 0.0, seed=1)
    real = _population(120, "real", 0.5, 0.03, seed=2)
    rep = analyze(sim, real, GapConfig(classifier_folds=4))
    assert rep.success.gap.contains(0.4) and rep.success.gap.low > 0.2
    err = next(m for m in rep.metrics if m.metric == "final_error")
    assert err.wasserstein.contains(0.03) or abs(err.wasserstein.value - 0.03) < 0.003
    assert err.ks_pvalue < 1e-6
    assert rep.classifier.balanced_accuracy > 0.9
    assert rep.weights is not None and rep.weights.strength == pytest.approx(
        1 - sum(r.success for r in real) / 120
    )


def test_classifier_is_near_chance_on_the_same_distribution():
    sim = _population(200, "sim", 0.7, 0.0, seed=3)
    real = _population(200, "real", 0.7, 0.0, seed=4)
    rep = analyze(sim, real, GapConfig(classifier_folds=5))
    assert 0.4 <= rep.classifier.balanced_accuracy <= 0.6
    assert rep.success.gap.contains(0.0)
    assert len(rep.classifier.fold_scores) == 5


@pytest.mark.parametrize(
    ("sim_kw", "real_kw", "message"),
    [
        ({}, {"robot": "fr3"}, "mismatched robot/task"),
        ({}, {"task": "pickplace"}, "mismatched robot/task"),
    ],
)
def test_mismatched_robot_or_task_is_an_error(sim_kw, real_kw, message):
    sim = [make_record(seed=i, **sim_kw) for i in range(3)]
    real = [make_record(seed=i, source="real", **real_kw) for i in range(3)]
    with pytest.raises(ValueError, match=message):
        analyze(sim, real)


def test_empty_real_data_and_wrong_source_are_errors():
    sim = [make_record(seed=i) for i in range(3)]
    with pytest.raises(ValueError, match="no real episode records"):
        analyze(sim, [])
    with pytest.raises(ValueError, match="source='real'"):
        analyze(sim, sim)


def test_tiny_real_set_reports_why_there_is_no_classifier():
    rep = analyze(
        [make_record(seed=i) for i in range(5)], [make_record(seed=9, source="real", success=False)]
    )
    assert rep.classifier.balanced_accuracy is None and "at least 2" in rep.classifier.note
    assert rep.success.n_real == 1


def test_physical_weights_peak_where_real_failures_cluster():
    rng = np.random.default_rng(5)
    sim = []
    for i in range(300):  # sim fails above friction 1.2 with an error that grows with friction
        mu = float(rng.uniform(0.5, 1.5))
        ok = mu < 1.2
        err = 0.01 if ok else 0.3 * (mu - 1.2) + 0.05
        sim.append(make_record(seed=i, success=ok, final_error=err, randomization={"friction": mu}))
    real = [
        make_record(seed=i, source="real", success=False, final_error=0.3 * 0.2 + 0.05) for i in range(10)
    ]
    real += [make_record(seed=20 + i, source="real", success=True, final_error=0.01) for i in range(10)]
    w = analyze(sim, real).weights
    assert w.names == ("friction",) and w.strength == pytest.approx(0.5)
    assert abs(w.centre[0] - 1.4) < 0.05
    assert w({"friction": 1.4}) > 0.45 > 0.01 > w({"friction": 0.6})
    assert np.allclose(w.batch(np.array([[1.4], [0.6]])), [w({"friction": 1.4}), w({"friction": 0.6})])


def test_weights_round_trip_and_column_form():
    from ast_robot.gap.weights import PhysicalWeights

    w = PhysicalWeights(("friction", "payload"), (1.4, 0.5), (0.1, 0.2), 0.8, "test")
    assert PhysicalWeights.from_dict(w.to_dict()) == w
    cols = w.batch_columns({"friction": np.array([1.4, 1.0]), "payload": np.array([0.5, 0.5])})
    assert cols == pytest.approx([0.8, 0.8 * np.exp(-0.5 * 16)])
    assert w.batch_columns({"friction": np.array([1.4])}) == pytest.approx([0.8])  # payload at centre
    with pytest.raises(ValueError, match="scale must be > 0"):
        PhysicalWeights(("a",), (1.0,), (0.0,), 0.5)
    with pytest.raises(ValueError, match="strength must be in"):
        PhysicalWeights(("a",), (1.0,), (1.0,), 1.5)


def test_shipped_gap_defaults_load(repo_root):
    from ast_robot.config import read_yaml_tree
    from ast_robot.config.schema import from_dict

    cfg = from_dict(GapConfig, read_yaml_tree(repo_root / "configs" / "gap" / "default.yaml"))
    assert cfg == GapConfig()
