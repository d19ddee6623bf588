"""The command latency a deployment declares (configs/deploy/<robot>.yaml ``command_latency_s``), measured over ROS.

The safety module leads a joint that follows its command freely by the lag it trails by: its servo's own plus the
delay of the command path, which the monitor cannot see, so the deployment declares it (issue 21; README: deployment,
declaring the command latency). This measures that delay on a robot (or the twin) through the topics of its deploy
config: with the arm at rest under its forward position controller, a small step (``--step`` rad) on one joint is
published at time t (the node's ROS clock); the first joint state whose position left the noise floor (``--noise``
rad, or 5 x the spread measured while at rest) carries the stamp t_move; t_move - t is the delay (DDS transport
included, which the policy node's commands take too) plus at most one joint-state period and the servo's first move
(one 1-2 ms physics or control step). The smallest over the trials minus one joint-state period, rounded down to the
millisecond, is what to declare: high by at most that servo step (inside arm.LAG_MARGIN_S), never by the sampling.
Round down when in doubt: a latency declared too high is lead the arm stores as push; too low only slows its free
motion.

Each step goes out and back (``--step`` then 0), so the arm ends where it started. Run it with nothing else
commanding the arm (no policy node), ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a ``ROS_DOMAIN_ID`` of the
robot's:

    .venv/bin/python bench/command_latency.py --robot fr3 --joint 6 --trials 10
    (the twin: .venv/bin/ast-robot twin --robot fr3 --rate 500 in another shell, same domain)
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SETTLE_S, WATCH_S = 0.3, 0.25  # at rest before a step; how long a step is watched for the first move


class LatencyProbe:
    """A node on the robot's topics: its joint states (stamp s, positions in the deploy config's joint order) and
    a forward position command publisher. Spins in its own thread."""

    def __init__(self, io: Any, name: str = "ast_latency_probe") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        if io.command_interface != "forward_position":
            raise ValueError(f"command_interface: {io.command_interface!r}; the step test needs the forward position "
                             f"controller (through trajectory segments the declared latency changes no limit)")  # fmt: skip
        self._msg_type, self.io = Float64MultiArray, io
        self.node = rclpy.create_node(name)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.node.create_publisher(Float64MultiArray, io.topics.forward_position, qos)
        self.node.create_subscription(JointState, io.topics.joint_states, self._on_state, qos)
        self.states: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_state(self, msg: Any) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.io.joint_names):
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        q = np.array([msg.position[index[n]] for n in self.io.joint_names])
        with self._lock:
            self.states.append((stamp, q))

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def since(self, t: float) -> list[tuple[float, np.ndarray]]:
        with self._lock:
            return [s for s in self.states if s[0] >= t]

    def wait_for_state(self, timeout_s: float) -> np.ndarray:
        deadline = time.monotonic() + timeout_s
        while not self.states:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no joint state on {self.io.topics.joint_states} within {timeout_s:g} s")
            time.sleep(0.01)
        return self.states[-1][1].copy()

    def command(self, q: np.ndarray) -> float:
        """Publish joint positions ``q``; the node's clock (s) at publication."""
        msg = self._msg_type()
        msg.data = [float(v) for v in q]
        t = self.now_s()
        self.pub.publish(msg)
        return t

    def close(self) -> None:
        self._executor.shutdown()
        self.node.destroy_node()


def first_move(states: list[tuple[float, np.ndarray]], joint: int, start: float, floor: float) -> float | None:
    """The stamp (s) of the first state whose ``joint`` left ``start`` by more than ``floor`` rad (None: none did)."""
    return next((t for t, q in states if abs(q[joint] - start) > floor), None)


def trial(probe: LatencyProbe, joint: int, step: float, noise: float | None) -> tuple[float | None, float]:
    """One step out and back: (delay s of the step out, or None if the joint never moved; the noise floor used)."""
    q0 = probe.states[-1][1].copy()
    probe.command(q0)
    t_rest = probe.now_s()
    time.sleep(SETTLE_S)
    rest = np.array([q[joint] for _, q in probe.since(t_rest + SETTLE_S / 2)])
    start = float(np.median(rest)) if rest.size else float(q0[joint])
    floor = noise if noise is not None else max(5.0 * float(np.ptp(rest)) if rest.size > 2 else 0.0, 1e-6)
    target = q0.copy()
    target[joint] = start + step
    t_pub = probe.command(target)
    time.sleep(WATCH_S)
    moved = first_move(probe.since(t_pub), joint, start, floor)
    back = target.copy()
    back[joint] = start
    probe.command(back)
    time.sleep(WATCH_S)
    return (None if moved is None else moved - t_pub), floor


def measure(io: Any, joint: int, step: float = 0.02, trials: int = 10, noise: float | None = None,
            timeout_s: float = 20.0) -> dict:  # fmt: skip
    """The step test on ``io``'s robot (rclpy initialised by the caller): per-trial delays and what to declare."""
    probe = LatencyProbe(io)
    try:
        probe.wait_for_state(timeout_s)
        deadline = time.monotonic() + timeout_s  # the command publisher matched by the robot's controller
        while probe.pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        results = [trial(probe, joint, step * (1 if k % 2 == 0 else -1), noise) for k in range(trials)]
        stamps = np.array([t for t, _ in probe.states])
    finally:
        probe.close()
    delays = [d for d, _ in results if d is not None]
    period = float(np.median(np.diff(stamps))) if stamps.size > 2 else 0.0
    smallest = min(delays) if delays else None
    declare = None if smallest is None else max(0.0, math.floor((smallest - period) * 1e3) / 1e3)
    return {"robot": io.robot, "joint": joint + 1, "step_rad": step, "trials": trials, "moved": len(delays),
            "delays_s": [round(d, 5) for d in delays], "noise_floor_rad": [f for _, f in results],
            "state_period_s": round(period, 6), "smallest_s": smallest, "median_s": float(np.median(delays)) if delays else None,
            "declare_s": declare}  # fmt: skip


def main() -> None:
    import rclpy

    from ast_robot.deploy.robot_io import load_robot_io
    from bench.common import write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", default="fr3", help="fr3, or a robot YAML (configs/deploy/).")
    parser.add_argument("--joint", type=int, default=6, help="Joint to step (1-based, the deploy config's order).")
    parser.add_argument("--step", type=float, default=0.02, help="Step size (rad), out and back.")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--noise", type=float, default=None, help="Noise floor (rad); default: 5 x the spread at rest.")
    parser.add_argument("--name", default="command_latency")
    args = parser.parse_args()
    io = load_robot_io(args.robot)
    if not 1 <= args.joint <= len(io.joint_names) or not 0 < abs(args.step) <= 0.1:
        raise SystemExit(f"--joint: 1-{len(io.joint_names)}, --step: a small step of at most 0.1 rad; got {args.joint}, {args.step}")
    rclpy.init()
    try:
        row = measure(io, args.joint - 1, args.step, args.trials, args.noise)
    finally:
        rclpy.shutdown()
    print(row)
    print(f"declare in configs/deploy/{io.robot}.yaml: command_latency_s: {row['declare_s']}")
    print(write_results(args.name, [row], [], "Step test of bench/command_latency.py (module docstring)."))


if __name__ == "__main__":
    main()
