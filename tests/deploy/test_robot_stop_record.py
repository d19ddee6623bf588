"""A robot that stops itself mid-episode (its safety system, e.g. a protective stop on a joint over its speed
limit, or an e-stop) stood on its brakes from then and refused commands: the record says from which tick
(meta ``stopped_at_step``) and the pick-and-place replay leaves that episode out of the fit. Issue 21: on the FR3
twin a wrist joint at 4.43 rad/s (limit 4.18 x 1.05) stopped 1 of 10 nominal episodes, and replaying the commands
after the stop made 99% of the round's trajectory loss, "unexplained". Real deployment session, real twin physics
(bench/gap_pickplace.py's in-process twin), the FR3's width_speed_force hand."""

from __future__ import annotations

import pytest

from ast_robot.gap.pick_replay import PickReplay
from bench.gap_pickplace import PickTwinDeployment

ROBOT = "fr3"
STOP_TICK = 60


def _episode(stop_at: int | None):
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.pickplace import episode_sheets

    twin = PickTwinDeployment(ROBOT, HiddenParams(), timeout_s=0.8)
    tick, ticks = twin.session.tick, []

    def stopping_tick(now):  # the robot reports a protective stop (UR SafetyMode 3) before this tick
        ticks.append(now)
        if len(ticks) == stop_at:
            twin.session.on_safety_mode(3, now)
        return tick(now)

    twin.session.tick = stopping_tick
    try:
        (record, _, _), = twin.run(episode_sheets(ROBOT, 1))
    finally:
        twin.close()
    return record


@pytest.fixture(scope="module")
def replay():
    return PickReplay(ROBOT)


def test_a_stopped_episode_says_from_which_tick_and_is_not_replayed(replay):
    record = _episode(STOP_TICK)
    assert record.meta["stopped_at_step"] == STOP_TICK - 1  # the record's rows start at the first tick
    assert record.meta["held_steps"] >= record.steps - STOP_TICK
    why = replay.replayable(record)
    assert "stopped" in why and f"step {STOP_TICK - 1}" in why and f"seed {record.seed}" in why


def test_an_episode_without_a_stop_has_no_stop_and_replays_to_the_noise_floor(replay):
    import numpy as np

    record = _episode(None)
    assert "stopped_at_step" not in record.meta and replay.replayable(record) == ""
    assert np.sqrt(np.mean((replay({}, record) - record.joint_positions) ** 2)) < 1e-6
