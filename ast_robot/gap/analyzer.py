"""The reality-gap analyzer: success-rate gap, per-metric distribution gaps, a sim-vs-real classifier
measured on held-out folds, and the physical-feedback weights of the significance model.

System identification (``ast_robot.gap.sysid``) needs a simulator; its result is attached to the
report by the caller (``GapReport.sysid``) so this module stays a pure function of the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ast_robot.config.gap import GapConfig
from ast_robot.gap.features import METRICS, feature_names, metric_values, outcome_features
from ast_robot.gap.stats import (
    DistributionGap,
    Interval,
    distribution_gap,
    newcombe_difference,
    wilson_interval,
)
from ast_robot.gap.weights import PhysicalWeights, weights_from_failures
from ast_robot.records import EpisodeRecord


@dataclass(frozen=True)
class SuccessGap:
    """Success rates with Wilson intervals and their difference (sim - real) with Newcombe's interval."""

    sim: Interval
    real: Interval
    gap: Interval  # sim rate - real rate
    n_sim: int
    n_real: int


@dataclass(frozen=True)
class ClassifierResult:
    """Cross-validated balanced accuracy of telling sim episodes from real ones (0.5 = indistinguishable)."""

    balanced_accuracy: float | None
    fold_scores: tuple[float, ...] = ()
    folds: int = 0
    features: tuple[str, ...] = ()
    note: str = ""


@dataclass
class GapReport:
    """Everything the analyzer found; ``sysid`` is filled in when a simulator was available."""

    robot: str
    task: str
    success: SuccessGap
    metrics: list[DistributionGap]
    classifier: ClassifierResult
    weights: PhysicalWeights | None
    randomized: tuple[str, ...]
    sysid: Any = None  # ast_robot.gap.sysid.SysIdResult
    visual: Any = None  # pick-and-place: ast_robot.gap.visual.VisualResult
    provenance: dict[str, str] = field(default_factory=dict)

    def culprits(self) -> list[str]:
        """Named causes, most explaining first: physical parameters by their share of the trajectory loss,
        pick-and-place look groups by their share of the pixel loss (``ast_robot.gap.pick.ranked_culprits``)."""
        from ast_robot.gap.pick import ranked_culprits

        return ranked_culprits(self.sysid, self.visual)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"robot": self.robot, "task": self.task, "success": asdict(self.success),
                "metrics": [m.to_dict() for m in self.metrics], "classifier": asdict(self.classifier),
                "weights": None if self.weights is None else self.weights.to_dict(),
                "randomized": list(self.randomized),
                "sysid": None if self.sysid is None else self.sysid.to_dict(),
                "visual": None if self.visual is None else self.visual.to_dict(), "culprits": self.culprits(),
                "provenance": dict(self.provenance)}  # fmt: skip


def check_inputs(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord]) -> tuple[str, str]:
    """Both sides non-empty, the right sources, and one robot and task throughout; returns (robot, task)."""
    if not sim:
        raise ValueError("no sim episode records: the analyzer needs at least one (check --sim)")
    if not real:
        raise ValueError("no real episode records: the analyzer needs at least one (check --real)")
    for side, records in (("sim", sim), ("real", real)):
        wrong = [r.seed for r in records if r.source != side]
        if wrong:
            raise ValueError(
                f"{side} records must have source={side!r}; episodes with seeds {wrong[:5]} do not"
            )
    robot, task = sim[0].robot, sim[0].task
    for side, records in (("sim", sim), ("real", real)):
        for r in records:
            if (r.robot, r.task) != (robot, task):
                raise ValueError(f"mismatched robot/task: {side} episode seed {r.seed} is {r.robot}/{r.task}, "
                                 f"but the first sim episode is {robot}/{task}; analyze one robot and task at a time")  # fmt: skip
    return robot, task


def success_gap(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], confidence: float) -> SuccessGap:
    ks, kr = sum(r.success for r in sim), sum(r.success for r in real)
    return SuccessGap(wilson_interval(ks, len(sim), confidence), wilson_interval(kr, len(real), confidence),
                      newcombe_difference(ks, len(sim), kr, len(real), confidence), len(sim), len(real))  # fmt: skip


def classifier_accuracy(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], folds: int,
                        seed: int = 0) -> ClassifierResult:  # fmt: skip
    """Balanced accuracy of a random forest over outcome features, on held-out stratified folds only."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = min(folds, len(sim), len(real))
    if folds < 2:
        return ClassifierResult(None, note="needs at least 2 episodes on each side for cross-validation")
    track = all(r.joint_targets is not None for r in (*sim, *real))
    x = np.vstack([outcome_features(sim, track), outcome_features(real, track)])  # (Ns + Nr, F)
    y = np.r_[np.zeros(len(sim)), np.ones(len(real))]
    model = RandomForestClassifier(n_estimators=100, min_samples_leaf=2, class_weight="balanced",
                                   random_state=seed, n_jobs=1)  # fmt: skip
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, x, y, cv=cv, scoring="balanced_accuracy")
    return ClassifierResult(float(scores.mean()), tuple(float(s) for s in scores), folds, feature_names(track))


def randomized_names(sim: Sequence[EpisodeRecord]) -> tuple[str, ...]:
    """Parameters present in every sim record and varying across them."""
    common = set.intersection(*(set(r.randomization) for r in sim)) if sim else set()
    return tuple(n for n in sorted(common) if np.ptp([r.randomization[n] for r in sim]) > 0)


def analyze(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], cfg: GapConfig | None = None,
            seed: int = 0) -> GapReport:  # fmt: skip
    """Compare sim and real episode records (validated for robot/task/source) and return a GapReport."""
    cfg = cfg or GapConfig()
    sim, real = list(sim), list(real)
    robot, task = check_inputs(sim, real)
    metrics = [distribution_gap(m, metric_values(sim, m), metric_values(real, m), cfg.confidence, seed=seed)
               for m in METRICS]  # fmt: skip
    names = randomized_names(sim)
    return GapReport(robot, task, success_gap(sim, real, cfg.confidence), metrics,
                     classifier_accuracy(sim, real, cfg.classifier_folds, seed),
                     weights_from_failures(sim, real, names), names)  # fmt: skip
