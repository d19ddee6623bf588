"""Builders of valid episode records for the gap tests."""

from __future__ import annotations

import numpy as np

from ast_robot.records import ContactSummary, EpisodeRecord


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


def twin_records(hidden: dict, seed: int, n: int = 2, steps: int = 30, dt: float = 0.04,
                 meta: dict | None = None) -> list[EpisodeRecord]:  # fmt: skip
    """Real records without ROS: drive the twin (hidden parameters, sensor bias and noise included) with
    smooth random joint-position targets (<= 1 rad/s) from its measured start, recording what it publishes."""
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.sim import TwinSim

    twin = TwinSim("ur5e", HiddenParams(**hidden), seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        twin.reset()
        q0 = twin.joint_state()[0]
        targets = q0 + np.cumsum(rng.uniform(-dt, dt, (steps, q0.size)), axis=0)  # (T, J)
        qs = [q0]
        for t in range(steps):
            twin.command_positions(targets[t])
            twin.step_to((t + 1) * dt)
            qs.append(twin.joint_state()[0])
        out.append(make_record(seed=seed * 100 + k, source="real", success=False, steps=steps, control_dt=dt,
                               joint_positions=np.array(qs), joint_targets=targets, randomization={},
                               meta=dict(meta or {})))  # fmt: skip
    return out
