"""End to end over loopback: twin + policy node + recorder run episodes; the bag reads back as records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ast_robot.records import SCHEMA_VERSION
from tests.ros.helpers import LATCHED, Proc, call, spin_for, wait_until
from tests.ros.robot_double import HOME, RobotDouble

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
        # Only its goal publisher and services are used: the twin is the robot, and a second /joint_states
        # stream would feed the node fake states.
        robot = RobotDouble(probe, streaming=False)
        robot.wait_connected()
        reset = probe.create_client(Trigger, "/twin/reset")
        states: list = []
        probe.create_subscription(JointState, "/joint_states", lambda m: states.append(np.array(m.position)), 1)
        for k, goal in enumerate(GOALS):
            spin_for(probe, 0.3)  # commands still in flight from the last episode land before the reset
            assert call(probe, reset, Trigger.Request()).success
            states.clear()
            wait_until(probe, lambda: states and np.abs(states[-1] - HOME).max() < 0.05, 10.0, "twin at home")
            robot.goal(goal)
            spin_for(probe, 0.2)  # the node sees post-reset states too (same publisher)
            res = call(probe, robot.start, Trigger.Request())
            for _ in range(20):  # a loaded machine can leave the state briefly stale: the node refuses
                if res.success:
                    break
                spin_for(probe, 0.1)
                res = call(probe, robot.start, Trigger.Request())
            assert res.success, res.message
            wait_until(probe, lambda k=k: len(outcomes) > k, 15.0, f"outcome of episode {k}")
        spin_for(probe, 0.5)  # let the recorder receive the last outcome
        offered = {(int(i.qos_profile.durability), int(i.qos_profile.reliability))
                   for i in probe.get_publishers_info_by_topic("/ast/outcome")}  # fmt: skip
    finally:
        codes = [p.stop() for p in procs]
    logs = "\n".join(p.text()[-1500:] for p in procs)
    assert codes == [0, 0, 0], logs
    assert offered == recorded_outcome_qos(bag) == {(1, 1)}  # transient-local, reliable: as published, as recorded
    return outcomes, bag


def recorded_outcome_qos(bag) -> set[tuple[int, int]]:
    """(durability, reliability) of each QoS profile the bag's metadata offers for /ast/outcome (rmw numbering)."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        profiles = [q for c in reader.connections if c.topic == "/ast/outcome" for q in c.ext.offered_qos_profiles]
    return {(q.durability.value, q.reliability.value) for q in profiles}


@pytest.mark.slow
def test_episodes_on_twin_are_streamed_and_recorded(probe, tmp_path):
    from ast_robot.records import EpisodeRecord
    from ast_robot.records.bag import read_outcome_bag

    outcomes, bag = run_episodes(probe, "scripted:reach", tmp_path)
    assert len(outcomes) == len(GOALS)
    records = [EpisodeRecord.from_dict(o) for o in outcomes]
    assert all(r.source == "real" and r.robot == "ur5e" and r.schema_version == SCHEMA_VERSION for r in records)
    # Every goal is reachable. (The protective stops once seen here came from the test's robot double also
    # publishing /joint_states: the node then saw the commanded positions as measured ones.)
    assert all(r.success for r in records), [(r.success, r.final_error, r.meta) for r in records]
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


class Recording:
    """Wraps a policy and keeps every (observation, action) pair: behaviour-cloning data."""

    def __init__(self, policy):
        self.policy, self.samples = policy, []

    def act(self, obs):
        action = self.policy.act(obs)
        self.samples.append(({k: np.array(v) for k, v in obs.items()}, np.array(action)))
        return action


def train_tiny_checkpoint(out_dir) -> str:
    """Behaviour-clone the scripted controller on the twin (no ROS) into a tiny SparseMultimodalPolicy."""
    import torch

    from ast_robot.config import DeployConfig, PolicyConfig
    from ast_robot.deploy.runner import PolicyRunner, ReachController
    from ast_robot.deploy.session import DeploymentSession
    from ast_robot.policies.policy import build_policy
    from ast_robot.twin.sim import TwinSim
    from tests.deploy.test_runner import closed_loop, observe_at_rest

    torch.set_num_threads(1)  # the test machine is shared: don't fight for cores
    teacher = Recording(ReachController())
    runner = PolicyRunner.for_robot(teacher, "ur5e", DeployConfig())
    rng = np.random.default_rng(0)
    for _ in range(6):
        sim = TwinSim("ur5e")
        session = DeploymentSession(runner, list(sim.joint_names), "ur5e", timeout_s=1.0)
        session.on_goal(rng.uniform([0.3, -0.25, 0.1], [0.55, 0.25, 0.4]))
        observe_at_rest(session, sim)  # joint states until trusted and at rest, and the safety mode
        session.start_episode(0.0)
        closed_loop(session, sim, 130)
    obs0 = teacher.samples[0][0]
    spec = {k: (v.shape, "float64") for k, v in obs0.items()}
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(d_model=32, n_layers=1, n_heads=2, attention_backend="dense"), spec, 4)
    batch = {k: torch.tensor(np.stack([o[k] for o, _ in teacher.samples])) for k in spec}
    batch["action"] = torch.tensor(np.stack([a for _, a in teacher.samples]), dtype=torch.float32)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(100):
        loss, _ = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * batch["action"].var(0).sum().item(), loss.item()  # it learned something
    from ast_robot.config import ExperimentConfig
    from ast_robot.envs.reach import ReachEnv
    from ast_robot.robot.contract import DeploymentContract
    from ast_robot.trainers.bc import save_policy

    # the deployment contract of what the teacher served (the default UR5e reach env): deploy refuses without one
    return str(save_policy(policy, out_dir, 100, ExperimentConfig(), DeploymentContract.from_env(ReachEnv("ur5e"))))


@pytest.mark.slow
def test_tiny_trained_checkpoint_runs_episodes_on_the_twin(probe, tmp_path):
    from ast_robot.records.bag import read_outcome_bag

    checkpoint = train_tiny_checkpoint(tmp_path / "run")
    outcomes, bag = run_episodes(probe, checkpoint, tmp_path)
    assert len(outcomes) == len(GOALS)
    records = read_outcome_bag(bag)
    assert [r.meta["checkpoint"] for r in records] == [checkpoint] * len(GOALS)
    assert all(r.steps > 0 and r.meta["end_reason"] in ("success", "timeout") for r in records)
    print("tiny checkpoint on the twin:", [(r.success, round(r.final_error, 3)) for r in records])
