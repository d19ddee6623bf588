"""bench/twin_wrist.py's paired sim arm: the env runs the episode driver's own tables (a mismatch is refused), and a
student that does nothing succeeds nowhere, with or without the deployment's command path (the null case)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ast_robot.config import load_config
from bench import twin_wrist

ROOT = Path(__file__).resolve().parents[2]


def wrist_cfg():
    return load_config(ROOT / "configs/experiments/pickplace_ur5e_pixels_bc.yaml",
                       ["env.wrist_camera=true", "env.camera_size=[32,32]", "env.wrist_camera_size=[16,16]",
                        "env.max_episode_steps=3"])  # fmt: skip


@pytest.mark.parametrize("pipeline", [False, True])
def test_a_still_student_succeeds_nowhere_on_the_drivers_tables(pipeline):
    seen = []

    def still(obs):
        seen.append(obs)
        return np.zeros(4)

    records = twin_wrist.same_table_sim(wrist_cfg(), still, "ur5e", 2, 1000, pipeline=pipeline)
    assert [r.seed for r in records] == [1000, 1001] and not any(r.success for r in records)
    assert len(seen) == 6 and seen[0]["wrist_camera"].shape == (16, 16, 3)


def test_a_table_unlike_the_drivers_is_refused(monkeypatch):
    from ast_robot.twin import pickplace

    real = pickplace.episode_sheets

    def moved(robot, episodes, seed=0):
        sheets = real(robot, episodes, seed)
        table = json.loads(sheets[1][0])
        table["objects"][0]["x"] += 0.01
        return [sheets[0], (json.dumps(table), sheets[1][1])]

    monkeypatch.setattr(pickplace, "episode_sheets", moved)
    with pytest.raises(RuntimeError, match=r"episode 1: the env's table is not the episode driver's \(seed 1001\)"):
        twin_wrist.same_table_sim(wrist_cfg(), lambda obs: np.zeros(4), "ur5e", 2, 1000, pipeline=False)
