"""PolicyRunner and DeploymentSession in closed loop with the MuJoCo twin (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.config import DeployConfig
from ast_robot.deploy.runner import PolicyRunner, ReachController, load_deploy_policy
from ast_robot.deploy.session import DeploymentSession
from ast_robot.records import EpisodeRecord, from_json, to_json
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.twin.sim import TwinSim

PERIOD = 1 / 125


class BadPolicy:
    def __init__(self, out):
        self.out = out

    def act(self, obs):
        if isinstance(self.out, Exception):
            raise self.out
        return self.out


REST_STATES = ACQUIRE_STATES + 8  # states 4 ms apart: trust, then two 8 ms speed intervals at rest (SafetyMonitor.at_rest)


def observe_at_rest(session: DeploymentSession, sim: TwinSim) -> None:
    """:func:`observe` over the last 40 ms, the arm at rest: an episode starts only from rest (or one step from
    the last command), and states all at one time show no speed (this module's runner keeps the last test's
    command while ``sim.reset()`` puts the arm home)."""
    q, dq, _ = sim.joint_state()
    for k in range(REST_STATES):
        t = sim.time - (REST_STATES - 1 - k) * 0.004
        reason = session.on_joint_state(list(sim.joint_names), q, dq, 0.0, t, t)
    assert reason is None, reason
    session.on_safety_mode(sim.safety_mode)


def observe(session: DeploymentSession, sim: TwinSim) -> None:
    """What the node hears from the robot: its joint state and its safety mode."""
    q, dq, _ = sim.joint_state()
    for _ in range(ACQUIRE_STATES):  # the first states of a stream (re)acquire the monitor's trust
        if (reason := session.on_joint_state(list(sim.joint_names), q, dq, 0.0, sim.time, sim.time)) is None:
            break
    assert reason is None, reason
    session.on_safety_mode(sim.safety_mode)


def trusted(runner: PolicyRunner, q, dq, now: float) -> None:
    """Offer a joint state until the safety monitor trusts it (the start of a stream)."""
    for _ in range(ACQUIRE_STATES):
        if runner.observe_joint_state(q, dq, now) is None:
            return
    raise AssertionError("state not trusted")


def closed_loop(session: DeploymentSession, sim: TwinSim, ticks: int, lag: list | None = None):
    """Drive ``sim`` from ``session`` like the node would; returns (commands, records).
    ``lag``: when given, gets max |command - measured| (rad) of every tick."""
    commands, records = [], []
    names = list(sim.joint_names)
    for _ in range(ticks):
        observe(session, sim)
        out = session.tick(sim.time)
        if out.command is not None:
            commands.append(out.command)
            if lag is not None:
                lag.append(float(np.max(np.abs(out.command - sim.joint_state()[0]))))
            sim.command_trajectory(names, [(out.command, PERIOD)])
        if out.record is not None:
            records.append(out.record)
        sim.step_to(sim.time + PERIOD)
    return np.array(commands), records


@pytest.fixture(scope="module")
def runner_and_sim():
    return PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig()), TwinSim("ur5e")


def test_scripted_reach_succeeds_and_makes_a_valid_record(runner_and_sim):
    runner, sim = runner_and_sim
    sim.reset()
    session = DeploymentSession(runner, list(sim.joint_names), "ur5e", timeout_s=3.0, meta={"checkpoint": "x"})
    goal = np.array([0.35, -0.1, 0.3])
    assert session.on_goal(goal) is None
    observe_at_rest(session, sim)
    session.start_episode(sim.time)
    lag: list[float] = []
    commands, records = closed_loop(session, sim, 400, lag)
    assert len(records) == 1
    rec = records[0]
    assert rec.success and rec.final_error < 0.05 and rec.meta["end_reason"] == "success"
    assert rec.actions.shape == (rec.steps, 4) and rec.joint_positions.shape == (rec.steps + 1, 6)
    assert from_json(to_json(rec)).to_dict() == rec.to_dict()
    lim = runner.limits
    assert np.all(np.abs(np.diff(commands, axis=0)) <= lim.max_step + 1e-12)
    assert np.all(np.abs(np.diff(commands, n=2, axis=0)) <= lim.max_step_change + 1e-12)
    assert max(lag) <= lim.max_lead.max() + 1e-9 and rec.meta["held_steps"] == 0
    # After the episode the arm stops at the last command: inside the goal ball plus at most the lead.
    assert np.linalg.norm(sim.ee_position() - goal) < 0.07


def test_fail_closed_until_the_safety_mode_is_known(runner_and_sim):
    runner, sim = runner_and_sim
    sim.reset()
    session = DeploymentSession(runner, list(sim.joint_names), "ur5e")
    session.on_goal([0.35, -0.1, 0.3])
    q, dq, _ = sim.joint_state()
    for k in range(REST_STATES):  # joint states only (the arm at rest): no safety-mode message yet
        t = sim.time - (REST_STATES - 1 - k) * 0.004
        session.on_joint_state(list(sim.joint_names), q, dq, 0.0, t, t)
    with pytest.raises(ValueError, match="no safety-mode message received yet"):
        session.start_episode(sim.time)
    session.on_safety_mode(3)  # PROTECTIVE_STOP
    with pytest.raises(ValueError, match="safety mode 3"):
        session.start_episode(sim.time)
    session.on_safety_mode(1)
    assert "started" in session.start_episode(sim.time)
    session.stop_episode()
    fr3_like = DeploymentSession(runner, list(sim.joint_names), "ur5e", require_safety_mode=False)
    assert "started" in fr3_like.start_episode(sim.time)


def test_timeout_record_and_stop(runner_and_sim):
    runner, sim = runner_and_sim
    sim.reset()
    session = DeploymentSession(runner, list(sim.joint_names), "ur5e", timeout_s=0.2)
    session.on_goal([2.0, 0.0, 0.3])  # out of reach: the episode times out
    observe(session, sim)
    with pytest.raises(ValueError, match="no episode is running"):
        session.stop_episode()
    session.start_episode(sim.time)
    with pytest.raises(ValueError, match="already running"):
        session.start_episode(sim.time)
    _, records = closed_loop(session, sim, 40)
    assert len(records) == 1 and not records[0].success and records[0].meta["end_reason"] == "timeout"
    assert isinstance(records[0], EpisodeRecord)


@pytest.mark.parametrize("out", [np.array([np.nan, 0, 0, 0]), np.zeros(1), RuntimeError("boom"), "text"])
def test_broken_policy_outputs_become_holds(runner_and_sim, out):
    _, sim = runner_and_sim
    sim.reset()
    runner = PolicyRunner.for_robot(BadPolicy(out), "ur5e", DeployConfig())
    q, dq, _ = sim.joint_state()
    trusted(runner, q, dq, 0.0)
    runner.set_goal([0.4, 0.0, 0.3])
    result = runner.step(0.001)
    assert result.decision.held and result.decision.reasons
    np.testing.assert_allclose(result.decision.positions, q)


def test_inputs_are_rejected_with_reasons(runner_and_sim):
    runner, sim = runner_and_sim
    session = DeploymentSession(runner, list(sim.joint_names), "ur5e")
    assert "goal rejected" in session.on_goal([np.nan, 0, 0])
    assert "joint_state rejected" in session.on_joint_state(["a"], [0.0], [], 0.0, 0.0, 0.0)
    assert "image rejected" in session.on_image("rgb8", 2, 2, 6, b"\0" * 5)
    assert session.on_image("rgb8", 128, 96, 288, bytes(128 * 288)) is None
    assert runner.camera.shape == (64, 64, 3)
    assert session.rejections == {"goal": 1, "joint_state": 1, "image": 1}
    assert session.tick(0.0).command is None  # no episode: the policy does not drive the robot


def test_load_policy_errors():
    assert isinstance(load_deploy_policy("scripted:reach"), ReachController)
    with pytest.raises(FileNotFoundError, match="scripted:reach"):
        load_deploy_policy("/no/such/checkpoint")
    with pytest.raises(TypeError, match="act"):
        PolicyRunner(object(), None, None, None)


def test_episode_run_to_its_timeout_is_judged_at_its_end():
    """With end_on_success off, passing through the goal is not success: the final error decides, as in sim."""
    from ast_robot.deploy.episode import EpisodeTracker

    goal, q = np.zeros(3), np.zeros(6)
    for end_on_success, last_ee, success in ((False, [0.2, 0, 0], False), (False, [0.01, 0, 0], True)):
        tracker = EpisodeTracker("ur5e", "reach", 0.008, 0.024, end_on_success=end_on_success)
        tracker.start(0.0, goal)
        records = [tracker.tick(t, q, None, np.array(ee, dtype=float), q, None)
                   for t, ee in ((0.0, [0.01, 0, 0]), (0.008, [0.1, 0, 0]), (0.024, last_ee))]  # fmt: skip
        rec = records[-1]
        assert records[:2] == [None, None] and rec.meta["end_reason"] == "timeout"
        assert rec.success is success and (rec.time_to_success is not None) is success


def test_tcp_target_leads_the_measured_tcp_by_at_most_two_env_steps():
    """A stuck arm: the integrated TCP target stops two env steps (2 x max_ee_step) ahead of where the arm
    is, as in the envs, whatever the tick rate, instead of running away from it."""
    from ast_robot.config import EnvConfig

    runner = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig())
    amap, lead = runner.action_map, 2 * EnvConfig().max_ee_step
    q_home = TwinSim("ur5e").true_positions()
    start = amap.solver.forward(q_home)[0]
    q_ref = q_home
    for _ in range(60):  # 60 ticks of "move +x at full speed" = 12 env steps
        q_ref = amap(np.array([1.0, 0.0, 0.0, 1.0]), q_ref, q_home)
    ahead = amap.ee_cmd - start
    assert ahead[0] == pytest.approx(lead) and np.allclose(ahead[1:], 0.0)


def test_warm_up_leaves_no_state_behind():
    """warm_up runs observation, IK and kinematics once (first-call costs before the loop) and forgets them:
    the next episode's first command equals that of a runner that was never warmed up."""
    sim = TwinSim("ur5e")
    q, dq, _ = sim.joint_state()
    cold = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig())
    warm = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig())
    warm.warm_up()
    assert warm.action_map.ee_cmd is None and warm.safety.measured is None
    commands = []
    for runner in (cold, warm):
        runner.set_goal([0.4, 0.1, 0.3])
        trusted(runner, q, dq, 0.0)
        runner.reset()
        commands.append(runner.step(0.001).decision.positions)
    np.testing.assert_array_equal(commands[0], commands[1])
    with pytest.raises(ValueError, match="q: expected 6 values"):
        warm.warm_up([0.0, np.nan])


def test_rejections_are_counted_per_reason_and_summarized_at_most_once_a_second(runner_and_sim):
    runner, sim = runner_and_sim
    session = DeploymentSession(runner, list(sim.joint_names), "ur5e")
    names = list(sim.joint_names)
    lines = []
    for k in range(3000):  # 3 s of a 1 kHz flood of NaN states, a summary asked for after each
        session.on_joint_state(names, [np.nan] * 6, [], 0.0, k * 1e-3, 0.0)
        if k % 10 == 0:
            session.on_goal([np.nan, 0.0, 0.0])
        if (line := session.log.summary(k * 1e-3)) is not None:
            lines.append((k * 1e-3, line))
    assert len(lines) == 3 and all(b[0] - a[0] >= 1.0 for a, b in zip(lines, lines[1:]))
    assert "joint_state: non-finite x" in lines[1][1] and "goal: ValueError x100" in lines[1][1]
    assert session.log.totals["joint_state: non-finite"] == 3000 == session.rejections["joint_state"]
    assert "in the last 1.5 s" in session.log.summary(3.5)  # the rest, once a second has passed
    assert session.log.summary(5.0) is None  # nothing new: no line
