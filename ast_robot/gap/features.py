"""Per-episode scalar metrics and feature matrices extracted from episode records."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ast_robot.records import EpisodeRecord

# Metrics whose sim and real distributions are compared (name -> unit).
METRICS = {"final_error": "m", "time_to_success": "s", "path_length": "m", "joint_tracking_error": "rad"}


def tracking_error(record: EpisodeRecord) -> float | None:
    """RMS difference between commanded joint targets and the measured joints one step later (rad)."""
    if record.joint_targets is None:
        return None
    diff = record.joint_targets - record.joint_positions[1:]  # (T, J)
    return float(np.sqrt(np.mean(diff**2)))


def metric_values(records: Sequence[EpisodeRecord], metric: str) -> np.ndarray:
    """The metric over records, leaving out episodes where it does not exist (time without success)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    if metric == "joint_tracking_error":
        values = [tracking_error(r) for r in records]
    else:
        values = [getattr(r, metric) for r in records]
    return np.array([v for v in values if v is not None], dtype=float)


# Column names of outcome_features, in its row order (joint_tracking_error only with tracking).
FEATURE_NAMES = ("success", "final_error", "path_length", "max_joint_velocity", "time_or_duration",
                 "contact_max_force", "contact_mean_force", "contact_fraction")  # fmt: skip


def feature_names(with_tracking: bool) -> tuple[str, ...]:
    return FEATURE_NAMES + (("joint_tracking_error",) if with_tracking else ())


def outcome_features(records: Sequence[EpisodeRecord], with_tracking: bool) -> np.ndarray:
    """(N, F) outcome features of each episode (columns: :func:`feature_names`), the inputs of the
    sim-vs-real classifier."""
    rows = []
    for r in records:
        duration = r.steps * r.control_dt
        row = [float(r.success), r.final_error, r.path_length, r.max_joint_velocity,
               r.time_to_success if r.time_to_success is not None else duration,
               r.contact.max_force, r.contact.mean_force, r.contact.contact_steps / r.steps]  # fmt: skip
        if with_tracking:
            row.append(tracking_error(r))
        rows.append(row)
    return np.asarray(rows, dtype=float)


def randomization_matrix(records: Sequence[EpisodeRecord], names: Sequence[str]) -> np.ndarray:
    """(N, P) randomization values of sim records in the order of ``names``."""
    out = np.empty((len(records), len(names)))
    for i, r in enumerate(records):
        missing = [n for n in names if n not in r.randomization]
        if missing:
            raise ValueError(f"sim record {i} (seed {r.seed}) lacks randomization value(s) {missing}; "
                             f"it has {sorted(r.randomization)}")  # fmt: skip
        out[i] = [r.randomization[n] for n in names]
    return out
