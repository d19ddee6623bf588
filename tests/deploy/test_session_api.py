"""The ROS node talks to DeploymentSession through its public methods only; those methods say what they say."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from ast_robot.config import DeployConfig
from ast_robot.deploy.runner import PolicyRunner, ReachController
from ast_robot.deploy.session import START_WAIT_S, DeploymentSession
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
    assert {"tick", "request_start", "start_requested", "segment_time", "rest_at_measured"} <= {attr for _, _, attr in uses}
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


def _ready(session: DeploymentSession, sim: TwinSim, t0: float) -> tuple[float, float]:
    """A trusted state stream up to t0 and a goal; (t0, the state period)."""
    q, dq, _ = sim.joint_state()
    period = 0.008
    for k in reversed(range(ACQUIRE_STATES + 2)):
        t = t0 - k * period
        assert session.on_joint_state(list(sim.joint_names), q, dq, t, t, t) in (None, "joint_state rejected: not trusted: acquiring trust")
    session.on_goal([0.35, -0.1, 0.3])
    return t0, period


def _state_at(session: DeploymentSession, sim: TwinSim, t: float) -> None:
    q, dq, _ = sim.joint_state()
    session.on_joint_state(list(sim.joint_names), q, dq, t, t, t)


def test_a_requested_start_waits_out_the_trust_hold_after_the_twins_reset():
    """Issue 21: on simulated time a start accepted against the last state before /twin/reset happens at a
    state a pause later, which the trust rule holds on for ACQUIRE_STATES states; it used to be refused there
    and dropped silently (the operator had been told it would start)."""
    session, sim = _session()
    t0, period = _ready(session, sim, 5.0)
    assert "next joint state" in session.request_start(t0) and session.start_pending
    jumped = [t0 + 1.0 + k * period for k in range(ACQUIRE_STATES)]  # the reset's pause, arm at home
    for t in jumped[:-1]:
        _state_at(session, sim, t)
        assert session.start_refusal(t) is not None  # the hold the old node refused the start on
        assert session.start_requested(t) is False and session.start_pending and not session.episode_active
    _state_at(session, sim, jumped[-1])
    assert session.start_requested(jumped[-1]) is True and session.episode_active and not session.start_pending
    assert session.start_requested(jumped[-1] + period) is False  # nothing pending any more
    session.close()


def test_a_requested_start_is_dropped_when_the_wait_runs_out_on_a_stop_or_on_stop_episode():
    session, sim = _session()
    t0, period = _ready(session, sim, 5.0)
    session.request_start(t0)  # the stream stops after one jumped state: stale until the wait runs out
    _state_at(session, sim, t0 + 1.0)
    assert session.start_requested(t0 + 1.0) is False
    assert session.start_requested(t0 + 1.0 + START_WAIT_S / 2) is False and session.start_pending
    with pytest.raises(ValueError, match="joint state stale.*after the start request"):
        session.start_requested(t0 + 1.0 + START_WAIT_S)
    assert not session.start_pending and not session.episode_active
    t1, _ = _ready(session, sim, t0 + 3.0)
    session.request_start(t1)
    session.on_estop(True, t1)  # a stop drops it at once: an episode never starts on the stop's release
    _state_at(session, sim, t1 + period)
    with pytest.raises(ValueError, match="e-stop engaged"):
        session.start_requested(t1 + period)
    session.on_estop(False, t1 + period)
    _state_at(session, sim, t1 + 2 * period)
    assert session.start_requested(t1 + 2 * period) is False and not session.episode_active
    session.request_start(t1 + 2 * period)
    assert session.stop_episode() is None and not session.start_pending  # stop cancels the request
    with pytest.raises(ValueError, match="no episode is running"):
        session.stop_episode()
    session.close()


def test_a_requested_start_waits_for_the_policys_camera_frame_then_starts_anyway():
    """Issue 21: on simulated time an episode started before its camera frame (or tracker sample) arrived held
    its first ticks, as many as the wall time of the arrival decided (17 vs 15 from one run to the next). It
    now starts at the first state that has them; without them it starts once the wait ran out, holding."""
    from ast_robot.deploy.loader import load_deployable
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.twin.pickplace import episode_sheets

    io = load_robot_io("ur5e")
    policy, contract = load_deployable("scripted:pickplace", "ur5e", io)
    runner = PolicyRunner.for_robot(policy, "ur5e", DeployConfig(), contract=contract, io=io)
    sim = TwinSim("ur5e", joint_names=io.joint_names)
    session = DeploymentSession(runner, list(io.joint_names), "ur5e", require_safety_mode=False)
    table, instruction = episode_sheets("ur5e", 1)[0]
    assert session.on_table(table) is None and session.on_instruction(instruction) is None
    image = np.zeros((64, 64, 3), dtype=np.uint8).tobytes()
    for first_frame in (0.02, None):  # a frame 20 ms after the request; none at all
        t0, period = _ready(session, sim, 5.0 if first_frame else 9.0)
        session.request_start(t0)
        t = t0
        while not session.episode_active:
            t += period
            assert t <= t0 + 2 * period + START_WAIT_S, "the start neither happened nor ran out"
            _state_at(session, sim, t)
            if first_frame is not None and t >= t0 + first_frame:
                assert session.on_image("rgb8", 64, 64, 64 * 3, image, t) is None
            started = session.start_requested(t)
            assert started == session.episode_active and (not started or bool(session.runner.missing_inputs(t))
                                                          == (first_frame is None))  # fmt: skip
        expected = t0 + first_frame if first_frame else t0 + period + START_WAIT_S
        assert t == pytest.approx(expected, abs=period)
        session.stop_episode()
    session.close()


def test_an_episode_starts_from_rest_at_the_measured_arm_not_the_last_command():
    """The arm was moved home between episodes (an operator; the twin's /twin/reset teleports it) with the last
    command still inside the lead window: the new episode's first command starts at the arm, as the envs start
    one. Before, it started at the previous episode's last command (a UR5e nominal loop: 0.13 rad from the arm,
    the episode apart from the env's from its first tick, issue 21)."""
    session, sim = _session()
    runner, home = session.runner, np.array(sim.spec.home_qpos)
    for k in range(ACQUIRE_STATES):
        session.on_joint_state(list(sim.joint_names), home, None, k * 0.002, k * 0.002, k * 0.002)
    session.on_goal([0.35, -0.1, 0.3])
    session.start_episode(0.01)
    t = 0.01
    while np.abs(runner.safety.reference - home).max() < 0.1:  # drive the commands 0.1 rad away
        t += session.period_s
        out = session.tick(t)
        session.on_joint_state(list(sim.joint_names), out.command, None, t, t, t)  # the arm follows exactly
    session.stop_episode()
    assert np.abs(runner.safety.reference - home).max() < runner.limits.max_lead.min()  # inside the window
    for k in range(1, ACQUIRE_STATES + 60):  # moved home between episodes: states at rest there
        s = t + k * 0.002
        session.on_joint_state(list(sim.joint_names), home, None, s, s, s)
    session.start_episode(s)
    first = session.tick(s + session.period_s).command
    assert np.abs(first - home).max() <= runner.limits.max_step.max() + 1e-12, np.abs(first - home)
    session.close()
