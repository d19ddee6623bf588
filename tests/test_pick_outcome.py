"""The one pick-and-place judge (ast_robot.pick_outcome): the env side (``ast-robot eval`` records) and the
deployment's episode tracker judge one trajectory identically; events on hand-made trajectories and the null
cases (nothing grasped, nothing measured)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ast_robot.envs  # noqa: F401 - registers the envs
from ast_robot.deploy.episode import EpisodeTracker
from ast_robot.envs.experts import PickPlaceExpert
from ast_robot.evaluation import rollout
from ast_robot.pick_outcome import PickJudge
from ast_robot.records import PickOutcome, from_json, to_json

WIDTH = (0.0, 0.085)
PLACE = (0.5, 0.1, 0.02)


def _trajectory(env, seed: int) -> list[dict]:
    """The infos of one expert episode from its reset (the state the env's judge sees first) to its end."""
    expert = PickPlaceExpert(env.unwrapped)
    obs, info = env.reset(seed=seed)
    expert.reset()
    infos, done = [info], False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        infos.append(info)
        done = terminated or truncated
    return infos


@pytest.mark.parametrize("robot", ["UR5e", "FR3"])
def test_one_trajectory_is_judged_identically_by_eval_and_the_deployment(robot):
    env = gym.make(f"ast_robot/PickPlace{robot}-v0")
    base = env.unwrapped
    expert = PickPlaceExpert(base)
    sim = rollout(env, expert.act, seed=3, reset=expert.reset)
    infos = _trajectory(env, seed=3)  # the same seeded episode, replayed state by state into the deployment
    tracker = EpisodeTracker(base.robot.name, "pickplace", base.control_dt, timeout_s=1e3,
                             success_radius=base.cfg.success_threshold, end_on_success=False)  # fmt: skip
    tracker.gripper_width, tracker.target_object = base.robot.gripper_width, int(infos[0]["target_object"])
    tracker.start(0.0, infos[0]["place"])
    for k, info in enumerate(infos):
        tracker.observe_objects(info["object_positions"])  # what a lab's tracker measures
        tracker.tick(k * base.control_dt, info["joint_positions"], info["joint_velocities"], info["ee_pos"],
                     info["joint_targets"], np.zeros(4), width=info["gripper_width"])  # fmt: skip
    real = tracker.stop(infos[-1]["joint_positions"], infos[-1]["ee_pos"])
    env.close()
    assert [e for e, _ in sim.pick.events] == ["grasp", "lift", "place"], sim.pick.events
    assert [e for e, _ in real.pick.events] == [e for e, _ in sim.pick.events]
    assert [t for _, t in real.pick.events] == pytest.approx([t for _, t in sim.pick.events])
    assert (real.success, real.final_error) == (sim.success, pytest.approx(sim.final_error))
    assert sim.success and real.meta["judged_on"] == "object" and sim.pick.pose_source == "sim"
    assert real.pick.target_distance == pytest.approx(sim.pick.target_distance) == pytest.approx(sim.final_error)
    assert np.allclose(real.pick.object_positions, sim.pick.object_positions)
    assert from_json(to_json(sim)).pick == sim.pick and from_json(to_json(real)).pick == real.pick


def _judge(states, objects=True):
    """Feed (t, width, tcp z, cube z, cube x) states; the cube sits under the TCP unless x says otherwise."""
    judge = PickJudge(WIDTH, PLACE, 0, 0.05, "tracker" if objects else "none")
    for t, width, tcp_z, cube_z, cube_x in states:
        judge.step(t, width, (cube_x if cube_x is not None else 0.4, 0.0, tcp_z),
                   [(0.4 if cube_x is None else cube_x, 0.0, cube_z), (0.3, 0.2, 0.02)] if objects else None)  # fmt: skip
    return judge


def _pick_up(t0=0.0):
    """Open above the cube, close on it (the opening stops at the cube's 4 cm), lift 5 cm."""
    return [(t0, 0.085, 0.02, 0.02, None), (t0 + 0.1, 0.06, 0.02, 0.02, None), (t0 + 0.2, 0.041, 0.02, 0.02, None),
            (t0 + 0.3, 0.0408, 0.02, 0.02, None), (t0 + 0.4, 0.0408, 0.05, 0.05, None),
            (t0 + 0.5, 0.0408, 0.07, 0.07, None)]  # fmt: skip


def test_grasp_lift_then_a_slip_back_to_the_table_is_a_drop():
    judge = _judge([*_pick_up(), (0.6, 0.0408, 0.07, 0.02, None), (0.7, 0.0408, 0.07, 0.02, None)])
    assert judge.events == [("grasp", 0.3), ("lift", 0.4), ("drop", 0.6)]
    out = PickOutcome(**judge.outcome())
    assert out.target_distance == pytest.approx(np.hypot(0.1, 0.1)) and out.pose_source == "tracker"


def test_the_opening_collapsing_while_lifted_is_a_drop_and_lowering_onto_the_pad_is_not():
    collapse = _judge([*_pick_up(), (0.6, 0.02, 0.07, 0.07, None), (0.7, 0.0, 0.07, 0.02, None)])
    assert [e for e, _ in collapse.events] == ["grasp", "lift", "drop"]
    # carried over the pad (x 0.5, y 0.1 is the place; the cube stays under the TCP), lowered, released
    states = [*_pick_up()]
    judge = PickJudge(WIDTH, PLACE, 0, 0.05, "tracker")
    for t, width, tcp_z, cube_z, _ in states:
        judge.step(t, width, (0.4, 0.0, tcp_z), [(0.4, 0.0, cube_z)])
    for t, xy, z, width in ((0.6, (0.5, 0.1), 0.07, 0.0408), (0.7, (0.5, 0.1), 0.021, 0.0408),
                            (0.8, (0.5, 0.1), 0.021, 0.06), (0.9, (0.5, 0.1), 0.06, 0.085)):  # fmt: skip
        judge.step(t, width, (*xy, z), [(*xy, min(z, 0.021) if t > 0.8 else z)])  # carried, then left on the pad
    assert judge.events == [("grasp", 0.3), ("lift", 0.4), ("place", 0.8)]
    assert judge.target_distance() == pytest.approx(0.001)


def test_null_cases_closing_on_nothing_staying_open_and_no_object_pose():
    empty = _judge([(0.0, 0.085, 0.02, 0.02, 0.2), (0.1, 0.04, 0.02, 0.02, 0.2), (0.2, 0.0, 0.02, 0.02, 0.2),
                    (0.3, 0.0, 0.02, 0.02, 0.2)])  # fmt: skip
    assert empty.events == []  # closed fully: nothing between the fingers
    still = _judge([(t, 0.085, 0.02, 0.02, None) for t in (0.0, 0.1, 0.2)])
    assert still.events == []
    far = PickJudge(WIDTH, PLACE, 0, 0.05, "tracker")
    for t, width in ((0.0, 0.085), (0.1, 0.0408), (0.2, 0.0408)):
        far.step(t, width, (0.4, 0.0, 0.02), [(0.3, 0.1, 0.02)])  # the cube 14 cm from the TCP
    assert far.events == []  # the opening stopped on something, but no cube is in the hand
    blind = PickOutcome(**_judge(_pick_up(), objects=False).outcome())
    assert blind.events == (("grasp", 0.3),)  # the opening alone shows a grasp; lift and place need poses
    assert (blind.object_positions, blind.target_distance, blind.pose_source) == (None, None, "none")


def test_without_a_tracker_the_deployment_judges_at_the_tcp_and_says_so():
    tracker = EpisodeTracker("ur5e", "pickplace", 0.04, timeout_s=1e3, end_on_success=False)
    tracker.gripper_width, tracker.target_object = WIDTH, 0
    tracker.start(0.0, PLACE)
    for k in range(3):
        tracker.tick(k * 0.04, np.zeros(6), np.zeros(6), np.array(PLACE), np.zeros(6), np.zeros(4), width=0.085)
    record = tracker.stop(np.zeros(6), np.array(PLACE))
    assert record.meta["judged_on"] == "tcp" and record.pick.pose_source == "none"
    assert record.pick.object_positions is None and record.pick.target_distance is None
