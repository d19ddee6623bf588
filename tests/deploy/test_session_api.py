"""The ROS node talks to DeploymentSession through its public methods only; those methods say what they say."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from ast_robot.config import DeployConfig
from ast_robot.deploy.runner import PolicyRunner, ReachController
from ast_robot.deploy.session import DeploymentSession
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.twin.sim import TwinSim

ROS_PACKAGE = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "ast_robot_ros" / "ast_robot_ros"
PUBLIC = {name for name in vars(DeploymentSession) if not name.startswith("_")}


def _session_uses(path: Path) -> list[tuple[int, str]]:
    """(line, attribute) of every ``<x>.session.<attribute>`` in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.lineno, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "session"]  # fmt: skip


def test_the_node_uses_only_the_sessions_public_methods():
    uses = [(path.name, line, attr) for path in sorted(ROS_PACKAGE.glob("*.py")) for line, attr in _session_uses(path)]
    assert len(uses) > 10  # the scanner sees the node's calls (a scanner finding nothing would pass)
    assert {"tick", "start_refusal", "segment_time", "rest_at_measured"} <= {attr for _, _, attr in uses}
    private = [u for u in uses if u[2] not in PUBLIC]
    assert not private, f"the node reaches into the session's internals (runner, episodes, log, ...): {private}"
    assert "runner" not in PUBLIC and "episodes" not in PUBLIC  # instance attributes, not the public API


def _session(require_safety_mode: bool = False) -> tuple[DeploymentSession, TwinSim]:
    runner, sim = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig()), TwinSim("ur5e")
    return DeploymentSession(runner, list(sim.joint_names), "ur5e", require_safety_mode=require_safety_mode), sim


def test_start_refusal_names_what_is_missing_in_order():
    session, sim = _session()
    assert session.start_refusal(0.0) == "no trusted joint state yet"
    q, dq, _ = sim.joint_state()
    for _ in range(ACQUIRE_STATES):
        session.on_joint_state(list(sim.joint_names), q, dq, 0.0, sim.time, sim.time)
    assert session.start_refusal(sim.time).startswith("no goal received yet")
    session.on_goal([0.35, -0.1, 0.3])
    session.on_estop(True, sim.time)
    assert session.estop_engaged and "while holding" in session.start_refusal(sim.time)
    session.on_estop(False, sim.time)
    assert session.start_refusal(sim.time) is None and not session.episode_active
    session.start_episode(sim.time)
    assert session.episode_active and session.start_refusal(sim.time).startswith("an episode is already running")
    assert session.period_s == 1 / DeployConfig().control_hz
    assert session.segment_time(q) >= 0.0
    session.close()


def test_rejection_report_flushes_and_counts():
    session, sim = _session()
    session.on_joint_state(list(sim.joint_names), [np.nan] * 6, [], 0.0, 0.0, 0.0)
    assert "joint_state: non-finite x1" in session.rejection_summary(0.0)
    session.on_goal([np.nan, 0.0, 0.0])
    pending, totals = session.rejection_report(0.1)  # within the second: flushed anyway at exit
    assert "goal: ValueError x1" in pending
    assert totals.startswith("rejected messages: joint_state=1 image=0 goal=1 instruction=0 (by reason:")
    assert session.rejection_report(0.2)[0] is None  # nothing new
    session.close()
