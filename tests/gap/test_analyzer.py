"""The analyzer on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config.gap import GapConfig
from ast_robot.gap.analyzer import analyze
from ast_robot.gap.stats import newcombe_difference, wilson_interval
from tests.gap.helpers import make_record


def _population(n: int, source: str, p_success: float, error_shift: float, seed: int, friction=(0.5, 1.5)):
    """Records whose success and final error follow known distributions, independent of the draws."""
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
    assert all(wilson_interval(n, n).high == 1.0 for n in range(1, 40))  # not 0.9999999999999999


def test_known_gap_and_shift_are_recovered():
    sim = _population(300, "sim", 0.9, 0.0, seed=1)
    real = _population(120, "real", 0.5, 0.03, seed=2)
    rep = analyze(sim, real, GapConfig(classifier_folds=4))
    assert rep.success.gap.contains(0.4) and rep.success.gap.low > 0.2
    err = next(m for m in rep.metrics if m.metric == "final_error")
    assert err.wasserstein.contains(0.03) and err.wasserstein.low > 0.02
    assert err.wasserstein_pvalue < 0.01
    assert err.ks_pvalue < 1e-6
    assert rep.classifier.balanced_accuracy > 0.9
    # success here is drawn independently of every parameter: real failures sit nowhere in particular, so the
    # physical-feedback weights name nothing (no culprit, no reweighting)
    assert rep.weights is None


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
    for i in range(300):  # sim fails above friction 1.0 with an error that grows with friction
        mu = float(rng.uniform(0.5, 1.5))
        ok = mu < 1.0
        err = 0.01 if ok else 0.3 * (mu - 1.0) + 0.05
        sim.append(make_record(seed=i, success=ok, final_error=err, randomization={"friction": mu}))
    # the real robot fails only at the top of that range (its error is sim's at 1.4): apart from where sim fails
    real = [
        make_record(seed=i, source="real", success=False, final_error=0.3 * 0.4 + 0.05) for i in range(10)
    ]
    real += [make_record(seed=20 + i, source="real", success=True, final_error=0.01) for i in range(10)]
    w = analyze(sim, real).weights
    assert w.names == ("friction",) and w.strength == pytest.approx(0.5)
    assert abs(w.centre[0] - 1.4) < 0.05
    assert w({"friction": 1.4}) > 0.45 > 0.01 > w({"friction": 0.6})
    assert np.allclose(w.batch(np.array([[1.4], [0.6]])), [w({"friction": 1.4}), w({"friction": 0.6})])
    # null: real failures where sim fails anyway (like random sim failures) name nothing
    like_sim = [make_record(seed=40 + i, source="real", success=r.success, final_error=r.final_error)
                for i, r in enumerate(sim[:40])]  # fmt: skip
    assert sum(not r.success for r in like_sim) >= 5
    assert analyze(sim, like_sim).weights is None


def test_failure_weights_on_hostile_record_sets_are_none_never_an_invalid_bump():
    from ast_robot.gap.weights import weights_from_failures

    rng = np.random.default_rng(3)
    sim = [make_record(seed=i, success=i % 4 != 0, final_error=0.01 + 0.1 * (i % 4 == 0) + 0.001 * i,
                       randomization={"friction": float(rng.uniform(0.5, 1.5)), "payload": 0.5})
           for i in range(40)]  # fmt: skip
    fail = [make_record(seed=100 + i, source="real", success=False, final_error=0.2) for i in range(3)]
    assert weights_from_failures(sim, [], ("friction",)) is None  # no real episodes
    assert weights_from_failures([], fail, ("friction",)) is None  # no sim episodes
    assert weights_from_failures(sim, fail[:1], ("friction",)) is None  # one real failure: nothing to test
    assert weights_from_failures(sim, fail, ()) is None  # nothing randomized
    assert weights_from_failures(sim[:2], fail, ("friction",)) is None  # too few sim episodes to match
    with pytest.raises(ValueError, match=r"^episode record field 'randomization.friction': must be finite"):
        make_record(randomization={"friction": float("nan")})  # a NaN draw never reaches the weights
    with pytest.raises(ValueError, match=r"sim record 0 \(seed 0\) lacks randomization value\(s\) \['mass'\]"):
        weights_from_failures(sim, fail, ("mass",))


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
    import dataclasses

    from ast_robot.config import read_yaml_tree
    from ast_robot.config.schema import from_dict

    data = read_yaml_tree(repo_root / "configs" / "gap" / "default.yaml")
    assert set(data) == {f.name for f in dataclasses.fields(GapConfig)}  # every field shown, none stale
    assert from_dict(GapConfig, data) == GapConfig()


def test_physical_weights_find_the_planted_parameter_when_every_sim_episode_succeeded():
    # The demo's round 0: sim succeeds everywhere, so `success` is constant in sim and must not swamp the
    # distances; the real failures' final error matches sim episodes near friction 1.2 only.
    rng = np.random.default_rng(7)
    sim = [make_record(seed=i, final_error=0.01 + 0.1 * mu, joint_targets=None,
                       randomization={"friction": mu, "payload": float(rng.uniform(0, 1))})
           for i, mu in enumerate(float(x) for x in rng.uniform(0.5, 1.5, 200))]  # fmt: skip
    real = [make_record(seed=i, source="real", success=False, final_error=0.01 + 0.1 * 1.2, joint_targets=None)
            for i in range(5)]  # fmt: skip
    w = analyze(sim, real).weights
    assert w is not None and w.strength == 1.0
    assert w.names == ("friction",)  # payload, irrelevant, is left out of the bump
    assert w.centre[0] == pytest.approx(1.2, abs=0.03)


@pytest.mark.parametrize("true_w", [0.0, 1.0])
def test_wasserstein_interval_covers_the_true_distance_and_permutation_test_is_calibrated(true_w):
    # N(0, 1) vs N(w, 1) are exactly w apart; the demo's sample sizes. A percentile bootstrap of the
    # upward-biased plug-in distance covered W=0 in none of these trials.
    from ast_robot.gap.stats import distribution_gap

    trials = [distribution_gap("x", rng.normal(0, 1, 30), rng.normal(true_w, 1, 10), seed=t)
              for t, rng in ((t, np.random.default_rng(t)) for t in range(20))]  # fmt: skip
    covered = sum(g.wasserstein.contains(true_w) for g in trials)
    rejected = sum(g.wasserstein_pvalue < 0.05 for g in trials)
    assert covered >= 14, covered
    assert all(0 <= g.wasserstein.low <= g.wasserstein.high for g in trials)
    if true_w == 0.0:
        assert rejected <= 3, rejected  # about 5% false alarms
    else:
        assert rejected >= 12, rejected


def test_holm_adjustment_matches_a_hand_computed_example():
    from ast_robot.gap.stats import holm_adjust

    # sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1 -> 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.2
    assert holm_adjust([0.01, None, 0.04, 0.03, 0.2]) == pytest.approx([0.04, None, 0.09, 0.09, 0.2])
    assert holm_adjust([0.6, 0.9]) == [1.0, 1.0]


def test_feature_names_match_the_feature_columns():
    from ast_robot.gap.features import feature_names, outcome_features

    recs = [make_record(seed=i) for i in range(3)]
    for track in (False, True):
        assert outcome_features(recs, track).shape[1] == len(feature_names(track))
    assert analyze(recs, [make_record(seed=9, source="real"), make_record(seed=8, source="real")]).classifier.features \
        == feature_names(True)  # fmt: skip
