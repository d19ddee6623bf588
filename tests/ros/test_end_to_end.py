"""End to end over loopback: twin + policy node + recorder run episodes; the bag reads back as records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from std_msgs.msg import String
from std_srvs.srv import Trigger

from tests.ros.helpers import LATCHED, Proc, call, spin_for, wait_until
from tests.ros.robot_double import RobotDouble

GOALS = [(0.35, -0.1, 0.35), (0.3, 0.25, 0.4), (0.45, 0.05, 0.3)]


def run_episodes(probe, policy: str, tmp_path, hidden: str | None = None) -> tuple[list[dict], object]:
    twin_args = ["twin", "--robot", "ur5e", "--camera-rate", "5"] + (["--hidden", hidden] if hidden else [])
    bag = tmp_path / "bag"
    procs = [Proc(twin_args, tmp_path / "twin.log"),
             Proc(["deploy", policy, "--robot", "ur5e", "--set", "episode_timeout_s=4"], tmp_path / "deploy.log"),
             Proc(["record", "--out", str(bag)], tmp_path / "record.log")]  # fmt: skip
    outcomes: list[dict] = []
    try:
        probe.create_subscription(String, "/ast/outcome", lambda m: outcomes.append(json.loads(m.data)), LATCHED)
        robot = RobotDouble(probe)  # only its goal publisher and services are used: the twin is the robot
        robot.wait_connected()
        reset = probe.create_client(Trigger, "/twin/reset")
        for k, goal in enumerate(GOALS):
            assert call(probe, reset, Trigger.Request()).success
            robot.goal(goal)
            spin_for(probe, 0.2)  # the node must see post-reset joint states before the episode starts
            res = call(probe, robot.start, Trigger.Request())
            assert res.success, res.message
            wait_until(probe, lambda k=k: len(outcomes) > k, 15.0, f"outcome of episode {k}")
        spin_for(probe, 0.5)  # let the recorder receive the last outcome
    finally:
        codes = [p.stop() for p in procs]
    logs = "\n".join(p.text()[-1500:] for p in procs)
    assert codes == [0, 0, 0], logs
    return outcomes, bag


@pytest.mark.slow
def test_episodes_on_twin_are_streamed_and_recorded(probe, tmp_path):
    from ast_robot.gap.bags import read_outcome_bag
    from ast_robot.gap.outcomes import EpisodeRecord

    outcomes, bag = run_episodes(probe, "scripted:reach", tmp_path)
    assert len(outcomes) == len(GOALS)
    records = [EpisodeRecord.from_dict(o) for o in outcomes]
    assert all(r.source == "real" and r.robot == "ur5e" and r.schema_version == 1 for r in records)
    assert all(r.success for r in records), [(r.success, r.final_error, r.time_to_success, r.meta) for r in records]  # the twin is reachable
    for rec, goal in zip(records, GOALS):
        assert rec.meta["goal"] == ",".join(f"{v:.4f}" for v in goal)
        assert rec.joint_positions.shape == (rec.steps + 1, 6) and rec.joint_targets.shape == (rec.steps, 6)
    from_bag = read_outcome_bag(bag)
    assert [r.to_dict() for r in from_bag] == [r.to_dict() for r in records]
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == "/joint_states"]
        msgs = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]
    assert len(msgs) > 100 and list(msgs[-1].name)[0] == "shoulder_pan_joint"
    assert np.all(np.isfinite(np.array([m.position for m in msgs])))
