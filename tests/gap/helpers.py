"""Builders of valid episode records for the gap tests."""

from __future__ import annotations

import numpy as np

from ast_robot.gap.outcomes import ContactSummary, EpisodeRecord


def make_record(seed: int = 0, source: str = "sim", success: bool = True, steps: int = 5, joints: int = 6,
                **overrides) -> EpisodeRecord:  # fmt: skip
    """A valid record with small random arrays; ``overrides`` replace any field."""
    rng = np.random.default_rng(abs(seed))
    fields = dict(robot="ur5e", task="reach", seed=seed, source=source, success=success,
                  final_error=0.01 if success else 0.2, time_to_success=0.16 if success else None,
                  path_length=0.3, max_joint_velocity=1.2, control_dt=0.04,
                  actions=rng.uniform(-1, 1, (steps, 3)), joint_positions=rng.normal(size=(steps + 1, joints)),
                  joint_targets=rng.normal(size=(steps, joints)),
                  contact=ContactSummary(max_force=2.0, mean_force=1.0, contact_steps=1),
                  randomization={"friction": 0.9, "payload": 0.5} if source == "sim" else {},
                  meta={"run": "test"})  # fmt: skip
    fields.update(overrides)
    return EpisodeRecord(**fields)
