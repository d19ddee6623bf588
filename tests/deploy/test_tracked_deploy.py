"""Pick-and-place with a tracker (the privileged layout, "pickplace-privileged-v1"): the runner builds the env's
observation from the tracker's cube positions, the operator's table and the measured joints and gripper; the
contract asks for the tracker and the table; stale, missing or untrusted tracker samples leave the policy
unasked (a hold)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from ast_robot.config import DeployConfig, EnvConfig
from ast_robot.deploy.inputs import Rejected
from ast_robot.deploy.loader import check_contract
from ast_robot.deploy.robot_io import load_robot_io
from ast_robot.deploy.runner import PolicyRunner
from ast_robot.deploy.table import parse_table
from ast_robot.deploy.tracker import TrackerInput
from ast_robot.envs.pick_place import PickPlaceEnv
from ast_robot.robot.contract import ContractError, DeploymentContract
from ast_robot.robot.safety import TrackerTrust
from ast_robot.robot.safety.trust import ACQUIRE_STATES
from ast_robot.twin.pickplace import table_of_env
from tests.deploy.test_pickplace_deploy import IDS, Replay, gripper_state, replay_runner, tick_and_step


def tracked_env(robot: str, **cfg) -> PickPlaceEnv:
    env_cfg = EnvConfig(id=IDS[robot], n_objects=2, n_pads=2, **cfg)
    return PickPlaceEnv(robot, env_cfg, randomization={"enabled": False})  # no sensor noise: numbers compare


def sheet(env: PickPlaceEnv) -> str:
    """The operator's table of the env's episode, with its target (what the episode driver publishes)."""
    table = json.loads(table_of_env(env))
    table["target"] = {"object": int(env.target_object), "pad": int(env.target_pad)}
    return json.dumps(table)


@pytest.mark.parametrize("robot", ["ur5e", "fr3"])
def test_tracked_observation_equals_the_envs(robot):
    """Same state: the observation the policy gets from the tracker + table + joints + gripper equals the
    env's, number for number, but the cube's velocity: the env reads it from the physics, the deployment
    differentiates the tracker's positions (checked to 0.05 m/s: a tracker measures poses, not velocities)."""
    env = tracked_env(robot)
    contract = DeploymentContract.from_env(env)
    assert contract.observation_layout == "pickplace-privileged-v1" and contract.n_objects == 2
    assert contract.gripper_observed == "measured"
    actions, policy, runner = replay_runner(env, robot, seed=5, steps=16, close_from=9)
    obs, info = env.reset(seed=11)
    runner.table = parse_table(sheet(env))
    expected = []
    n = env.robot.n_joints
    for k in range(len(actions)):
        now = k * env.control_dt
        names, positions = gripper_state(runner, env)
        runner.set_gripper_width(runner.gripper.width_from_state(names, positions))
        runner.tracker.offer(info["object_positions"], now, stamp_s=now)
        expected.append(obs)
        _, obs, info = tick_and_step(env, runner, policy, info, k)
    velocity = slice(2 * n + 16, 2 * n + 19)  # target cube velocity: after proprio (2n + 10), position, relative
    exact = np.ones(expected[0]["observation"].size, dtype=bool)
    exact[velocity] = False
    widths = [e["observation"][2 * n + 6] for e in expected]
    assert max(widths) - min(widths) > 0.02  # the opening moved: the check covers the measured width
    for k, (sim, real) in enumerate(zip(expected, policy.seen, strict=True)):
        assert set(real) == set(sim) == {"observation", "achieved_goal", "desired_goal"}, k
        np.testing.assert_allclose(real["observation"][exact], sim["observation"][exact], rtol=0, atol=1e-12,
                                   err_msg=f"step {k}")  # fmt: skip
        np.testing.assert_allclose(real["observation"][velocity], sim["observation"][velocity], atol=0.05)
        np.testing.assert_allclose(real["achieved_goal"], sim["achieved_goal"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(real["desired_goal"], sim["desired_goal"], rtol=0, atol=1e-12)
    env.close()


def held_runner() -> tuple[PolicyRunner, np.ndarray]:
    env = tracked_env("ur5e")
    env.reset(seed=3)
    contract = DeploymentContract.from_env(env)
    runner = PolicyRunner.for_robot(Replay(np.zeros((100, 4))), "ur5e", DeployConfig(), contract=contract,
                                    synchronous=True)  # fmt: skip
    runner.table = parse_table(sheet(env))
    q = (runner.limits.lower + runner.limits.upper) / 2
    env.close()
    return runner, q


def test_the_runner_holds_without_table_or_with_stale_or_missing_tracker_samples():
    runner, q = held_runner()
    table, runner.table = runner.table, None
    trusted_state = [runner.observe_joint_state(q, None, 0.0) for _ in range(ACQUIRE_STATES)]
    assert trusted_state[-1] is None
    result = runner.step(0.0)
    assert result.action is None and result.decision.held
    assert "no table set" in result.decision.reasons[0] and "no trusted object poses" in result.decision.reasons[0]
    assert "no goal" not in result.decision.reasons[0]  # the table is its goal, no goal topic
    runner.table = table
    cubes = np.array([[0.4, 0.1, 0.02], [0.5, -0.1, 0.02]])
    runner.tracker.offer(cubes, 0.01)
    runner.observe_joint_state(q, None, 0.01)
    assert runner.step(0.01).action is not None  # every input there: the policy is asked
    age = runner.tracker.max_age_s  # 3 tracker periods
    stale = round(0.01 + age + 0.04, 3)  # the last sample is 0.04 s past that age: hold
    for t in np.arange(0.018, stale + 1e-9, 0.008):  # the arm's states keep coming (the joint watchdog is content)
        runner.observe_joint_state(q, None, t)
    result = runner.step(stale)
    assert result.action is None and f"no trusted object poses within {age:g} s" in result.decision.reasons[0]
    runner.tracker.offer(cubes, stale + 0.01)
    runner.observe_joint_state(q, None, stale + 0.004)
    assert runner.step(stale + 0.01).action is not None
    runner.set_table(table)  # the table was set again: no sample until the tracker sees the new one
    runner.observe_joint_state(q, None, stale + 0.012)
    assert runner.step(stale + 0.012).action is None
    runner.tracker.offer(cubes + [0.2, 0.0, 0.0], stale + 0.013)  # 0.2 m from the last in 3 ms: trusted, a new table
    runner.observe_joint_state(q, None, stale + 0.014)
    assert runner.step(stale + 0.014).action is not None


@pytest.mark.parametrize("sample,reason", [
    (np.array([[0.4, 0.1, 0.02]]), "expected 2 object positions"),
    (np.array([[0.4, 0.1, 0.02], [np.nan, 0.0, 0.02]]), "non-finite"),
    (np.array([[0.4, 0.1, 0.02], [9.0, 0.0, 0.02]]), "outside the tracked volume"),
    (np.array([[0.4, 0.1, 0.02], [0.5, 0.2, 0.02]]), "jumped"),  # 0.3 m in 0.05 s: a swapped tag
    ("cubes", "expected \\(n, 3\\) numbers"),
    (np.zeros((65, 3)), "n <= 64"),
])  # fmt: skip
def test_untrusted_tracker_samples_are_refused_and_leave_the_last_one(sample, reason):
    tracker = TrackerInput(2, 10.0)
    cubes = np.array([[0.4, 0.1, 0.02], [0.5, -0.1, 0.02]])
    tracker.offer(cubes, 0.0)
    with pytest.raises(Rejected, match=reason):
        tracker.offer(sample, 0.05)
    positions, velocities = tracker.latest(0.05)
    np.testing.assert_array_equal(positions, cubes)
    np.testing.assert_array_equal(velocities, 0.0)


def test_a_new_tables_sample_delivered_before_the_table_gives_the_same_input_as_after_it():
    """The twin moves the cubes to the next table at once; DDS may deliver that table's first tracker sample before
    the table (no order across topics): refused as a jump, then judged again when the table is set, so both
    orders leave the same positions. A jump with no table set stays refused (the swapped-tag case)."""
    old, new = np.array([[0.4, 0.1, 0.02], [0.5, -0.1, 0.02]]), np.array([[0.6, -0.15, 0.02], [0.45, 0.2, 0.02]])
    orders = []
    for table_first in (True, False):
        tracker = TrackerInput(2, 25.0)
        tracker.offer(old, 0.0, stamp_s=10.0)
        if table_first:
            tracker.reset()
            tracker.offer(new, 0.04, stamp_s=10.04)
        else:
            with pytest.raises(Rejected, match="jumped"):
                tracker.offer(new, 0.04, stamp_s=10.04)
            np.testing.assert_array_equal(tracker.latest(0.04)[0], old)  # refused: the last trusted one stands
            tracker.reset()
        orders.append(tracker.latest(0.05))
    np.testing.assert_array_equal(orders[0][0], new)
    np.testing.assert_array_equal(orders[1][0], orders[0][0])
    np.testing.assert_array_equal(orders[1][1], orders[0][1])
    tracker = TrackerInput(2, 25.0)  # the null: another sample trusted after the jump, then a new table
    tracker.offer(old, 0.0)
    with pytest.raises(Rejected, match="jumped"):
        tracker.offer(new, 0.04)
    tracker.offer(old, 0.08)
    tracker.reset()
    assert tracker.latest(0.09) is None  # the refused jump is not revived once a trusted sample followed it


def test_the_first_tables_sample_delivered_before_the_table_is_kept_when_it_shows_that_table():
    """On the first table there is no earlier sample to jump from: the table's first sample, delivered before the
    table, was trusted and then dropped by the table's reset, and the policy held for a tracker period (a parity
    run at load 6-9 fell one step behind the env). Kept when its cubes sit where the table puts them; the null: a
    sample of cubes elsewhere (or of another count) is still dropped."""
    new = np.array([[0.6, -0.15, 0.02], [0.45, 0.2, 0.02]])
    table_xy = new[:, :2] + 0.004  # within TABLE_MATCH_M
    tracker = TrackerInput(2, 25.0)
    tracker.offer(new, 0.04, stamp_s=10.04)
    tracker.reset(table_xy)
    np.testing.assert_array_equal(tracker.latest(0.05)[0], new)
    np.testing.assert_array_equal(tracker.latest(0.05)[1], np.zeros((2, 3)))
    for other in (new[:, :2] + [0.03, 0.0], new[:1, :2]):  # a cube 3 cm off its place; one cube in the table
        tracker = TrackerInput(2, 25.0)
        tracker.offer(new, 0.04, stamp_s=10.04)
        tracker.reset(other)
        assert tracker.latest(0.05) is None
    tracker = TrackerInput(2, 25.0)
    tracker.offer(new, 0.04, stamp_s=10.04)
    tracker.reset()  # no table positions given: as before, the next sample is awaited
    assert tracker.latest(0.05) is None


def test_tracker_velocity_rate_and_age():
    tracker = TrackerInput(2, 10.0)
    assert tracker.latest(0.0) is None  # nothing yet
    cubes = np.array([[0.4, 0.1, 0.02], [0.5, -0.1, 0.02]])
    tracker.offer(cubes, 0.0, stamp_s=100.0)
    tracker.offer(cubes + [0.0, 0.0, 0.01], 0.2, stamp_s=100.1)  # received late: the stamps give the interval
    _, velocities = tracker.latest(0.2)
    np.testing.assert_allclose(velocities, [[0.0, 0.0, 0.1]] * 2)  # 1 cm over the stamps' 0.1 s
    assert tracker.latest(0.2 + 0.3) is not None and tracker.latest(0.2 + 0.31) is None  # 3 periods, then stale
    accepted = 0
    for k in range(1000):  # a flood at 1 kHz for 1 s: about 40 samples pass (4x the rate)
        try:
            tracker.offer(cubes + [0.0, 0.0, 0.01], 1.0 + k * 0.001)
            accepted += 1
        except Rejected:
            pass
    assert 38 <= accepted <= 45, accepted
    with pytest.raises(ValueError, match="tracker_rate_hz"):
        TrackerInput(2, 0.0)


def test_tracker_trust_null_case_a_still_stream_is_trusted_throughout():
    """The instrument on the null case: a steady, in-volume stream is never refused, and a sample after an
    outage longer than the age limit is trusted without the jump rule (the operator may have moved a cube)."""
    trust = TrackerTrust(2, 0.3)
    cubes = np.array([[0.4, 0.1, 0.02], [0.5, -0.1, 0.02]])
    assert all(trust.judge(cubes + 0.001 * (k % 3), 0.1 * k) is None for k in range(50))
    assert trust.fresh(4.9 + 0.3) and not trust.fresh(4.9 + 0.31)
    assert trust.judge(cubes + [0.3, 0.0, 0.0], 5.3) is None  # 0.4 s later: no jump check


def test_the_contract_asks_for_the_tracker_and_the_table():
    env = tracked_env("ur5e")
    contract = DeploymentContract.from_env(env)
    env.close()
    assert set(contract.interfaces) == {"joint_states", "arm_command", "gripper_command", "tracker", "table"}
    check_contract(contract, "ur5e")  # the shipped deploy config serves it (the twin's topics)
    io = load_robot_io("ur5e")
    for field, name in (("object_poses", "tracker"), ("twin_scene", "table")):
        unwired = SimpleNamespace(robot="ur5e", command_interface=io.command_interface,
                                  topics=SimpleNamespace(**{**vars(io.topics), field: ""}))  # fmt: skip
        with pytest.raises(ContractError, match=rf"needs robot interfaces \['{name}'\]"):
            check_contract(contract, "ur5e", unwired)
    three = {**contract.to_dict(), "n_objects": 3}  # a contract whose observation does not match its count
    with pytest.raises(ContractError, match="the policy observes"):
        check_contract(DeploymentContract.from_dict(three), "ur5e")


def test_the_session_feeds_the_tracker_and_a_new_table_restarts_its_jump_rule():
    """Through the session as the node calls it: trusted samples reach the runner's tracker (and the outcome's
    judge), untrusted ones are counted under object_poses; a new table lets the cubes' new places in."""
    from ast_robot.deploy.session import DeploymentSession

    runner, _ = held_runner()
    session = DeploymentSession(runner, list(load_robot_io("ur5e").joint_names), "ur5e", require_safety_mode=False)
    env = tracked_env("ur5e")
    env.reset(seed=3)
    table = sheet(env)
    env.close()
    assert session.on_table(table) is None and runner.table is not None
    cubes = np.array([[0.4, 0.1, 0.02], [0.5, -0.1, 0.02]])
    assert session.on_object_poses(cubes, 0.0, 10.0) is None
    assert runner.tracker.latest(0.0) is not None
    moved = cubes + [0.0, 0.2, 0.0]
    assert "jumped" in session.on_object_poses(moved, 0.05, 10.05)  # a swapped tag, not trusted ...
    assert session.rejections["object_poses"] == 1
    np.testing.assert_array_equal(runner.tracker.latest(0.05)[0], cubes)  # ... the last trusted one stays
    assert session.on_table(table) is None  # the operator set the table again: the cubes moved
    assert session.on_object_poses(moved, 0.1, 10.1) is None
    np.testing.assert_array_equal(runner.tracker.latest(0.1)[0], moved)
