"""Per-tick costs of the policy node's parts, in this process: the session's tick, the settled check, the kind publication.

Issue 21 (safety timing): does the command-kind publication or the settled check of the episode-start rule cost
the tick anything that matters? Measured directly, each call repeated (median of ``--repeats`` batches):

- the session's control tick (`DeploymentSession.tick`) after 4 trusted joint states (a 500 Hz stream, 125 Hz
  ticks) of an arm moving along a reach: whatever `ast_robot` is on the path (run once with the old code on
  PYTHONPATH to compare commits);
- `SafetyMonitor.settled`, `at_rest` and `_motion_kind` (where the code has them);
- a `std_msgs/Header` publication (the command kind) and a `JointTrajectory` one (the command), each with no
  reader and with one reader in another process (DDS delivers to it: the cost a bench's instrument adds).

    ROS_DOMAIN_ID=140 .venv/bin/python bench/tick_costs.py --out /tmp/tick_costs
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", "140")
HOME = np.array([-0.3006, -1.6927, 1.9236, -1.8017, -1.571, -1.8712])
READER = """
import rclpy, sys
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory
rclpy.init()
node = rclpy.create_node("tick_costs_reader")
node.create_subscription(Header, "/tick_costs/kind", lambda m: None, 10)
node.create_subscription(JointTrajectory, "/tick_costs/command", lambda m: None, 10)
print("ready", flush=True)
rclpy.spin(node)
"""


def per_call_us(fn: Callable[[], Any], n: int, repeats: int) -> str:
    """"min / median" over ``repeats`` batches of the mean time of one call (us): the least-disturbed batch is the
    call's own cost (as timeit reports it), the median what it took on this loaded machine."""
    batches = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        batches.append((time.perf_counter() - t0) / n * 1e6)
    return f"{min(batches):.2f} / {np.median(batches):.2f}"


def session_costs(n: int, repeats: int) -> dict[str, Any]:
    """The session's tick and the safety module's queries, on an episode of the scripted reach."""
    import ast_robot
    from ast_robot.config import DeployConfig
    from ast_robot.deploy.runner import PolicyRunner, ReachController
    from ast_robot.deploy.session import DeploymentSession

    runner = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig())
    names = list(runner.limits.joint_names)
    # an episode that lasts the whole measurement (ticks between episodes do nothing)
    session = DeploymentSession(runner, names, "ur5e", timeout_s=1e9, end_on_success=False)
    clock = {"t": 0.0, "q": HOME.copy()}

    def states(k: int = 4) -> None:  # k trusted states 2 ms apart, the arm creeping (never at rest)
        for _ in range(k):
            clock["t"] += 0.002
            clock["q"] = clock["q"] + 1e-4 * math.sin(clock["t"])
            session.on_joint_state(names, clock["q"], [], 0.0, clock["t"], 0.0)

    session.on_safety_mode(1)  # UR's NORMAL: the UR5e fails closed without one
    states(8)
    session.on_goal((0.3, 0.2, 0.4))
    session.start_episode(clock["t"])

    def tick() -> None:
        states()
        session.tick(clock["t"])

    out: dict[str, Any] = {"ast_robot": ast_robot.__file__}
    out["4 joint states + session tick (us, min / median)"] = per_call_us(tick, n, repeats)
    out["4 joint states alone (us, min / median)"] = per_call_us(states, n, repeats)
    assert session.episode_active, "the episode ended during the measurement"
    safety = runner.safety
    for name in ("settled", "at_rest"):
        if hasattr(type(safety), name):
            out[f"SafetyMonitor.{name} (us, min / median)"] = per_call_us(lambda name=name: getattr(safety, name), n * 4, repeats)
    if hasattr(safety, "_motion_kind"):
        cmd = safety.measured.copy()
        out["SafetyMonitor._motion_kind (us, min / median)"] = per_call_us(lambda: safety._motion_kind(cmd, cmd), n * 4, repeats)
    session.close()
    return out


def publish_costs(n: int, repeats: int) -> dict[str, Any]:
    """One Header (the command kind) and one JointTrajectory (the command) publication, without and with a reader."""
    import rclpy
    from ast_robot_ros.convert import trajectory_command
    from std_msgs.msg import Header

    rclpy.init()
    node = rclpy.create_node("tick_costs")
    pubs = {"Header (command kind)": node.create_publisher(Header, "/tick_costs/kind", 10),
            "JointTrajectory (command)": node.create_publisher(type(trajectory_command(["a"], [0.0], 0.01)),
                                                               "/tick_costs/command", 10)}  # fmt: skip
    names = [f"j{i}" for i in range(6)]
    make = {"Header (command kind)": lambda: Header(stamp=node.get_clock().now().to_msg(), frame_id="motion"),
            "JointTrajectory (command)": lambda: trajectory_command(names, HOME, 0.008)}  # fmt: skip
    out: dict[str, Any] = {}
    reader = None
    try:
        for readers in ("no reader", "one reader (another process)"):
            if readers != "no reader":
                reader = subprocess.Popen([sys.executable, "-c", READER], stdout=subprocess.PIPE, text=True)
                reader.stdout.readline()
                deadline = time.monotonic() + 10
                while any(p.get_subscription_count() == 0 for p in pubs.values()) and time.monotonic() < deadline:
                    time.sleep(0.05)
            for name, pub in pubs.items():
                out[f"{name}: build (us, min / median)"] = per_call_us(make[name], n, repeats)
                msg = make[name]()
                out[f"{name}: publish, {readers} (us, min / median)"] = per_call_us(lambda pub=pub, msg=msg: pub.publish(msg), n, repeats)
    finally:
        if reader is not None:
            reader.terminate()
            reader.wait(10)
        node.destroy_node()
        rclpy.shutdown()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per batch")
    parser.add_argument("--repeats", type=int, default=7, help="batches (the median is reported)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--name", default="tick_costs", help="result file name (e.g. tick_costs_old)")
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    costs = session_costs(args.n, args.repeats) | publish_costs(args.n, args.repeats)
    load.append(os.getloadavg()[0])
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.common, only now: ast_robot may be another tree's
    from bench.common import write_results

    rows = [{"metric": k, "value": v} for k, v in costs.items()]
    notes = (f"Load average (1 min) at start / end: {[round(x, 2) for x in load]} on a shared 2-core machine. Each "
             f"figure: min / median over {args.repeats} batches of {args.n} calls of the mean time per call (wall).")
    write_results(args.name, rows, [], notes=notes, out_dir=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
