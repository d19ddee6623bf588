"""A hostile driver against the policy node: fuzzed joint states, goals, e-stops and safety modes.

The bench plays a UR5e behind ur_robot_driver over loopback DDS: `/joint_states` at 500 Hz (the robot's
joint names) of a first-order arm that follows the node's JointTrajectory commands (time constant 30 ms,
at most the data-sheet 3.14 rad/s). The policy node (`ast-robot deploy scripted:reach`) runs in its own
process. Phases:

1. fuzz: valid states interleaved with hostile ones (26 kinds: NaN/inf, 1e9, beyond the limits, stray
   all-zeros, 0.5 rad jumps, random in-limit positions, the arm 0.1 s ago, bad stamps, bad names and
   sizes), hostile goals, e-stop and safety-mode toggles each preceded by an in-flight glitch state.
   Every command is checked against the joint limits, the per-tick step bound (from the previous command; for
   a command the node labels a walk-back, SafetyLimits.walk_steps at the true arm's speed) and the lead bound
   from the *true* arm. The node says why it sent each command (/ast/command_kind: SafetyDecision.kind); the
   report counts commands and step violations per kind and lists each violation with the arm's motion then.
2. watchdog: the valid states stop (hostile ones go on); time from the last valid state to the node's last
   moving command (and to its first repeated, held, one).
3. flood: valid states at 500 Hz + 1500 Hz NaN states (3:1): control cycles published, service round trips
   (stop + start an episode each second), node RSS and CPU; and the same without the flood for comparison.
   `--realtime` runs the node under SCHED_FIFO 20, as a robot's control PC would run its control loop: on a
   shared, overloaded machine the node's fair share of CPU can fall below what it needs (~0.22 core).

    ROS_DOMAIN_ID=70 .venv/bin/python bench/hostile_driver.py            # ~80 s
    ROS_DOMAIN_ID=70 .venv/bin/python bench/hostile_driver.py --fuzz-s 10 --flood-s 5 --watchdog-trials 2
    ROS_DOMAIN_ID=70 .venv/bin/python bench/hostile_driver.py --realtime   # the node under SCHED_FIFO 20
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", "70")

from bench.common import goal, write_results  # noqa: E402
from bench.hostile_checks import HOSTILE_KINDS, CommandLog, constant_from, hostile_state, proc_cpu_s, rss_mib  # noqa: E402

DRIVER_DT = 0.002  # s, the UR e-Series controller cycle
TAU_S = 0.03  # the simulated arm's time constant following its command
HOME = np.array([-0.3006, -1.6927, 1.9236, -1.8017, -1.571, -1.8712])
GOALS = ((-0.2, 0.5, 0.7), (0.45, -0.2, 0.25))  # far apart: seconds of motion between them (m, base_link)


class Driver:
    """The robot side: a first-order arm, its joint-state stream and the operator's inputs."""

    def __init__(self, node: Any, io: Any, limits: Any, kinds: bool = True) -> None:
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Header, String, UInt8
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node, self.io, self.limits, self.names = node, io, limits, list(io.joint_names)
        self.JointState, self.PoseStamped, self.Bool, self.UInt8 = JointState, PoseStamped, Bool, UInt8
        t = io.topics
        self.pub_js = node.create_publisher(JointState, t.joint_states, reliable)
        self.pub_goal = node.create_publisher(PoseStamped, t.goal, reliable)
        self.pub_estop = node.create_publisher(Bool, t.estop, reliable)
        self.pub_mode = node.create_publisher(UInt8, t.safety_mode, latched)
        node.create_subscription(JointTrajectory, t.trajectory, self._on_cmd, reliable)
        self.kinds_on = kinds
        if kinds:  # why the node sent each command (its publish_command_kind)
            node.create_subscription(Header, t.command_kind, self._on_kind, reliable)
        self.kinds: dict[float, str] = {}  # command stamp -> the node's SafetyDecision.kind
        node.create_subscription(String, t.outcome, self._on_outcome, QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.start_cli = node.create_client(Trigger, t.start_episode)
        self.stop_cli = node.create_client(Trigger, t.stop_episode)
        self.Trigger = Trigger
        self.lock = threading.Lock()
        self.q, self.target = HOME.copy(), HOME.copy()
        self.history: list[tuple[float, np.ndarray]] = []  # (t, true arm) every driver cycle
        self.log = CommandLog(limits)
        self.outcomes = 0
        self.valid_on, self.hostile_per_cycle, self.flood_per_cycle = True, 0.0, 0
        self.last_valid_s, self.last_valid_wall = 0.0, 0.0
        self.sent: dict[str, int] = {}
        self.rng = np.random.default_rng(0)
        self.exclude: set[str] = set()  # hostile kinds not to send now
        self.last_answer = ""  # the node's last service answer (why a start was refused)
        self._stop = threading.Event()
        self._nan_msg = JointState(name=self.names, position=[math.nan] * len(self.names))

    # ----- the arm and its stream (a thread at 500 Hz) ------------------------------------------
    def _on_cmd(self, msg: Any) -> None:
        now = time.monotonic()
        order = [list(msg.joint_names).index(n) for n in self.names]
        cmd = np.array(msg.points[0].positions)[order]
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.lock:
            self.target = cmd
            self.log.add(now, cmd, self.q.copy(), sent, speed=self.arm_speed())

    def arm_speed(self) -> np.ndarray:
        """(J,) rad/s: the true arm's velocity over the last ~8 ms of driver cycles (nan before)."""
        if len(self.history) < 6:
            return np.full(len(self.names), np.nan)
        (t0, q0), (t1, q1) = self.history[-5], self.history[-1]
        return (q1 - q0) / max(t1 - t0, 1e-6)

    def _on_kind(self, msg: Any) -> None:
        self.kinds[msg.stamp.sec + msg.stamp.nanosec * 1e-9] = msg.frame_id  # the same float as the command's

    def _on_outcome(self, _msg: Any) -> None:
        self.outcomes += 1

    def count(self, kind: str, n: int = 1) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + n

    def state(self, q: Any, stamp: float | None = None, names: list[str] | None = None) -> None:
        msg = self.JointState(name=list(self.names if names is None else names))
        msg.position = [float(v) for v in q]
        t = time.time() if stamp is None else stamp
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        self.pub_js.publish(msg)

    def run(self) -> None:
        next_t, last = time.monotonic(), time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            with self.lock:
                move = (self.target - self.q) * (1.0 - math.exp(-(now - last) / TAU_S))
                cap = self.limits.max_velocity * (now - last)
                self.q = self.q + np.clip(move, -cap, cap)
                q = self.q.copy()
            self.history.append((now, q))
            last = now
            if self.valid_on:
                self.last_valid_s, self.last_valid_wall = time.monotonic(), time.time()
                self.state(q, self.last_valid_wall)
                self.count("valid")
            for _ in range(self.flood_per_cycle):
                self.pub_js.publish(self._nan_msg)
            self.count("flood NaN", self.flood_per_cycle)
            if self.hostile_per_cycle and self.rng.random() < self.hostile_per_cycle:
                self.glitch()
            next_t += DRIVER_DT
            time.sleep(max(0.0, next_t - time.monotonic()))
            if time.monotonic() - next_t > 0.05:  # fell far behind (a loaded machine): do not burst
                next_t = time.monotonic()

    def glitch(self, kind: str | None = None) -> None:
        """One hostile joint state (a random kind, not one of ``self.exclude``, unless given)."""
        kind = kind or str(self.rng.choice([k for k in HOSTILE_KINDS if k not in self.exclude]))
        with self.lock:
            q = self.q.copy()
        past = self.history[-50][1] if len(self.history) > 50 else q
        kind, names, pos, stamp = hostile_state(kind, q, past, self.names, self.limits, self.rng)
        self.state(pos, stamp, names)
        self.count(kind)

    # ----- operator inputs ----------------------------------------------------------------------
    def goal(self, xyz: Any, frame: str = "base_link") -> None:
        msg = self.PoseStamped()
        msg.header.frame_id = frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in xyz)
        self.pub_goal.publish(msg)

    def estop(self, engaged: bool) -> None:
        self.pub_estop.publish(self.Bool(data=engaged))

    def mode(self, value: int) -> None:
        self.pub_mode.publish(self.UInt8(data=value))

    def call(self, client: Any, timeout: float = 2.0) -> tuple[bool, float]:
        """(success, round trip s); the executor thread completes the future."""
        t0 = time.monotonic()
        future = client.call_async(self.Trigger.Request())
        end = t0 + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.0005)
        dt = time.monotonic() - t0
        self.last_answer = future.result().message if future.done() else f"no answer within {timeout} s"
        return (future.done() and future.result().success), dt

    def ensure_episode(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ok, _ = self.call(self.start_cli)
            if ok or self._episode_running():
                return True
            time.sleep(0.05)
        return False

    def _episode_running(self) -> bool:
        n = len(self.log.times)
        time.sleep(0.05)
        return len(self.log.times) > n

    def stop(self) -> None:
        self._stop.set()


def fuzz_phase(d: Driver, seconds: float, period: float) -> dict:
    """Hostile states at ~1/3 of the driver's cycles, goals, e-stop and safety-mode stops with glitches."""
    rng = np.random.default_rng(1)
    d.hostile_per_cycle = 0.35
    stops: list[dict] = []
    end, k = time.monotonic() + seconds, 0
    bad_goals = [((math.nan, 0.0, 0.3), "base_link"), ((0.3, 0.3, 0.45), "base"), ((math.inf, 1, 1), "")]
    while time.monotonic() < end:
        d.ensure_episode(2.0)
        d.goal(GOALS[k % 2])
        for xyz, frame in bad_goals:
            d.goal(xyz, frame)
            d.count("bad goal")
        time.sleep(rng.uniform(0.3, 0.8))
        for _ in range(3):  # in-flight glitches: hostile states right before the stop
            d.glitch(rng.choice(["zeros", "jump", "huge", "random in limits", "beyond limits", "old arm"]))
        t_stop, wall, with_estop = time.monotonic(), time.time(), bool(k % 2 == 0)
        d.estop(True) if with_estop else d.mode(3)
        published = time.time()  # wall -> published: this process's own share of the hold delay
        d.count("e-stop" if with_estop else "safety mode 3")
        for _ in range(int(rng.integers(1, 4))):
            d.glitch()
        time.sleep(rng.uniform(0.2, 0.5))
        if rng.random() < 0.3:
            d.mode(int(rng.choice([0, 7, 255])))  # odd safety modes while stopped
            d.count("odd safety mode")
            time.sleep(0.05)
        t_release = time.monotonic()
        d.estop(False)
        d.mode(1)
        d.count("release", 2)
        stops.append({"t": t_stop, "wall": wall, "release": t_release, "estop": with_estop, "published": published})
        time.sleep(0.15)
        k += 1
    d.hostile_per_cycle = 0.0
    return {"stops": stops}


def stop_delays(d: Driver, stops: list[dict]) -> dict[str, list[float]]:
    """Per stop: stop published -> the node published the constant hold (s, its command stamp), by stop kind,
    and -> the hold arrived here (s); the arm's travel during the stop (rad); the hold's distance from the
    arm when the stop began (rad)."""
    times, sent, cmds = np.array(d.log.times), np.array(d.log.sent), np.array(d.log.commands)
    hist_t = np.array([t for t, _ in d.history])
    hist_q = np.array([q for _, q in d.history])
    out: dict[str, list[float]] = {"e-stop": [], "protective stop": [], "received": [], "travel": [], "hold_gap": []}
    for s in stops:
        sel = (times >= s["t"]) & (times < s["release"])
        if sel.sum() < 2:
            continue
        first = constant_from(cmds[sel])
        out["e-stop" if s["estop"] else "protective stop"].append(float(sent[sel][first] - s["wall"]))
        out["received"].append(float(times[sel][first] - s["t"]))
        arm = hist_q[(hist_t >= s["t"]) & (hist_t < s["release"])]
        q0 = hist_q[np.searchsorted(hist_t, s["t"]) - 1]
        out["travel"].append(float(np.abs(arm - q0).max()) if len(arm) else 0.0)
        out["hold_gap"].append(float(np.abs(cmds[sel][-1] - q0).max()))
    return out


def watchdog_phase(d: Driver, trials: int, period: float) -> tuple[list[float], list[float]]:
    """Valid states stop (hostile ones go on) while the arm is driven. Per trial, from the last valid state:
    to the last command that still moved (motion stopped: every later command equals it), and to the first
    repeated (held) command (one tick later)."""
    delays, repeats_at = [], []
    for k in range(trials):
        d.ensure_episode(5.0)
        d.goal(GOALS[k % 2])
        time.sleep(0.6)
        n0 = len(d.log.times)
        d.exclude = {"old arm"}  # a replay of the arm 0.1 s ago is plausible by design: it may be trusted
        d.hostile_per_cycle = 0.5
        d.valid_on = False
        time.sleep(0.25)
        t_last = d.last_valid_wall  # the last valid state's stamp: the node's watchdog runs from its receipt
        d.hostile_per_cycle, d.exclude = 0.0, set()
        d.valid_on = True
        sent, cmds = np.array(d.log.sent[n0:]), np.array(d.log.commands[n0:])
        after = sent > t_last
        sent, cmds = sent[after], cmds[after]
        if len(cmds) < 3:
            continue
        resumed = np.flatnonzero(sent > t_last + 0.2)  # valid states flow again from 0.25 s
        sent, cmds = sent[: resumed[0] if len(resumed) else len(sent)], cmds[: resumed[0] if len(resumed) else len(cmds)]
        if len(cmds) < 3:
            continue
        delays.append(float(sent[constant_from(cmds)] - t_last))  # publication of the last moving command
        repeats = np.flatnonzero(np.all(cmds[1:] == cmds[:-1], axis=1))
        if len(repeats):  # the node published the first held (repeated) command
            repeats_at.append(float(sent[repeats[0] + 1] - t_last))
        time.sleep(0.3)
    return delays, repeats_at


def flood_phase(d: Driver, seconds: float, flood: int, pid: int, period: float) -> dict:
    """Valid 500 Hz + ``flood`` NaN states per cycle; stop + start an episode every second."""
    d.flood_per_cycle = flood
    rss, cpu0, wall0 = [rss_mib(pid)], proc_cpu_s(pid), time.monotonic()
    trips, cycles, expected, gaps = [], 0, 0.0, []
    end = time.monotonic() + seconds
    k = 0
    d.ensure_episode(5.0)
    while time.monotonic() < end:
        d.goal(GOALS[k % 2])
        n0, t0 = len(d.log.times), time.monotonic()
        time.sleep(1.0)
        times = np.array(d.log.times[n0:])
        t1 = time.monotonic()
        cycles += len(times)
        expected += (t1 - t0) / period
        if len(times) > 1:
            gaps.append(float(np.diff(np.concatenate([[t0], times, [t1]])).max()))
        ok_stop, dt_stop = d.call(d.stop_cli)
        ok_start, dt_start = d.call(d.start_cli)
        trips += [dt_stop, dt_start]
        if not ok_start:
            d.ensure_episode(2.0)
        rss.append(rss_mib(pid))
        k += 1
    d.flood_per_cycle = 0
    node_cpu = (proc_cpu_s(pid) - cpu0) / (time.monotonic() - wall0)
    half = len(rss) // 2
    return {"cycles_ratio": cycles / max(expected, 1.0), "service_max_s": max(trips), "service_p50_s": float(np.median(trips)),
            "max_gap_s": max(gaps) if gaps else None, "rss_start_mib": rss[0], "rss_mid_mib": rss[half],
            "rss_end_mib": rss[-1], "node_cpu_fraction_of_one_core": round(node_cpu, 3), "seconds": seconds,
            "loadavg_1min": os.getloadavg()[0]}  # fmt: skip


def per_message_cost(n: int = 3000) -> dict[str, float]:
    """Microseconds per joint state through the node's checks (no ROS): valid, NaN, unreachable, too large.
    With at most MAX_TAKES_PER_TICK states taken per tick, this bounds the joint-state work of a tick."""
    from ast_robot_ros.policy_node import MAX_TAKES_PER_TICK

    from ast_robot.config import DeployConfig
    from ast_robot.deploy.runner import PolicyRunner, ReachController
    from ast_robot.deploy.session import DeploymentSession

    runner = PolicyRunner.for_robot(ReachController(), "ur5e", DeployConfig())
    names = list(runner.limits.joint_names)
    session = DeploymentSession(runner, names, "ur5e")
    cases = {"valid": (names, HOME), "NaN": (names, [math.nan] * 6), "unreachable": (names, HOME + 0.5),
             "200 joints": ([f"j{i}" for i in range(200)], [0.0] * 200)}  # fmt: skip
    out: dict[str, float] = {"max_takes_per_tick": MAX_TAKES_PER_TICK}
    for name, (js, q) in cases.items():
        t0 = time.perf_counter()
        for k in range(n):  # valid states 2 ms apart, each trusted; the others rejected
            session.on_joint_state(js, q, [], 0.0, k * DRIVER_DT, 0.0)
        out[f"{name} (us/message)"] = round(1e6 * (time.perf_counter() - t0) / n, 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fuzz-s", type=float, default=40.0)
    parser.add_argument("--watchdog-trials", type=int, default=8)
    parser.add_argument("--flood-s", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--dump", type=Path, default=None, help="also write every command (stamp, receipt, command, "
                        "true arm, its speed, kind) and every stop to this .npz, for a closer look")  # fmt: skip
    parser.add_argument("--node-probe", type=Path, default=None, help="run the node under bench/node_probe.py, which "
                        "writes the timing of its callbacks and tick phases to this .npz at exit (the node's code "
                        "unchanged: any commit's node)")  # fmt: skip
    parser.add_argument("--no-kinds", action="store_true", help="run the node as on a robot, without its command-kind "
                        "topic (publish_command_kind off, also for a commit before it): every command is then held to "
                        "the per-tick step bound, a walk-back too; for timing comparisons")  # fmt: skip
    parser.add_argument("--realtime", action="store_true", help="run the node under SCHED_FIFO 20 (chrt; needs "
                        "root or CAP_SYS_NICE), as a robot's control PC would; writes hostile_driver_realtime.*")
    args = parser.parse_args()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from ast_robot.config import DeployConfig
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.robot.safety import SafetyLimits
    from ast_robot.robot.specs import get_robot

    cost = per_message_cost()
    io, cfg = load_robot_io("ur5e"), DeployConfig(robot="ur5e")
    limits = SafetyLimits.from_robot(get_robot("ur5e"), cfg)
    period = limits.period_s
    log_path = Path(tempfile.mkdtemp(prefix="hostile_driver_")) / "node.log"
    prefix = ["chrt", "-f", "20"] if args.realtime else []
    launch = ["-m", "ast_robot"] if args.node_probe is None else [str(Path(__file__).with_name("node_probe.py")),
                                                                  str(args.node_probe)]  # fmt: skip
    node_proc = subprocess.Popen([*prefix, sys.executable, *launch, "deploy", "scripted:reach", "--robot", "ur5e",
                                  "--set", "end_on_success=false", "--set", "episode_timeout_s=60",
                                  *([] if args.no_kinds else ["--set", "publish_command_kind=true"])],
                                 stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                                 env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    rclpy.init()
    node = rclpy.create_node("hostile_driver")
    d = Driver(node, io, limits, kinds=not args.no_kinds)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    arm = threading.Thread(target=d.run, daemon=True)
    arm.start()
    load = [os.getloadavg()[0]]
    try:
        d.mode(1)
        deadline = time.monotonic() + 60
        while d.pub_js.get_subscription_count() == 0 or not d.start_cli.service_is_ready():
            if time.monotonic() > deadline or node_proc.poll() is not None:
                raise RuntimeError(f"policy node did not come up: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        d.goal(GOALS[0])
        if not d.ensure_episode(20.0):
            raise RuntimeError(f"no episode could start (last answer: {d.last_answer!r}): {log_path.read_text()[-2000:]}")
        fuzz = fuzz_phase(d, args.fuzz_s, period)
        n_fuzz_cmds = len(d.log.times)
        load.append(os.getloadavg()[0])
        watchdog = watchdog_phase(d, args.watchdog_trials, period)
        calm = flood_phase(d, max(3.0, args.flood_s / 3), 0, node_proc.pid, period)
        flood = flood_phase(d, args.flood_s, 3, node_proc.pid, period)
        load.append(os.getloadavg()[0])
    finally:
        d.stop()
        node_proc.send_signal(2)
        try:
            code = node_proc.wait(20)
        except subprocess.TimeoutExpired:
            node_proc.kill()
            code = None
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    name = "hostile_driver_realtime" if args.realtime else "hostile_driver"
    if args.dump:
        dump(args.dump, d, fuzz["stops"])
    report(name, d, limits, fuzz, stop_delays(d, fuzz["stops"]), watchdog, calm, flood | {"cost": cost}, load,
           code, log_path, n_fuzz_cmds, args.out)  # fmt: skip
    return 0


def dump(path: Path, d: Driver, stops: list[dict]) -> None:
    """Every command (node stamp, receipt, command, true arm, its speed, kind) and every fuzz stop (monotonic
    start, wall start, release, e-stop or not, wall once its message was published) as one .npz: what the summary
    rows are computed from."""
    d.log.label(d.kinds)
    log = d.log
    np.savez(path, sent=np.array(log.sent), times=np.array(log.times), commands=np.array(log.commands),
             arm=np.array(log.arm), speeds=np.array(log.speeds), kinds=np.array(log.kinds),
             stops=np.array([[s["t"], s["wall"], s["release"], s["estop"], s["published"]] for s in stops]))  # fmt: skip


def _ms(values: list[float], fn: Any = max) -> float | None:
    return round(1e3 * float(fn(values)), 3) if values else None


def report(name: str, d: Driver, limits: Any, fuzz: dict, stops: dict, watchdog: tuple, calm: dict, flood: dict, load: list,
           code: Any, log_path: Path, n_fuzz_cmds: int, out: Path | None) -> None:  # fmt: skip
    period = limits.period_s
    d.log.label(d.kinds)
    v = d.log.violations()
    details = d.log.step_details()
    hostile = sum(n for k, n in d.sent.items() if k not in ("valid", "flood NaN", "release"))
    node_log = log_path.read_text(errors="replace")
    summary = next((ln for ln in reversed(node_log.splitlines()) if "rejected messages:" in ln), "")
    measured = {
        "fuzz": {"messages sent": sum(d.sent.values()) - d.sent.get("flood NaN", 0), "hostile messages": hostile,
                 "valid states": d.sent.get("valid", 0), "commands received (fuzz)": n_fuzz_cmds,
                 "stops": len(fuzz["stops"]), "worst hold distance from the arm at the stop (rad)":
                 max(stops["hold_gap"], default=None), "worst arm travel during a stop (rad)":
                 max(stops["travel"], default=None), "e-stop hold delay max (ms)": _ms(stops["e-stop"]),
                 "e-stop hold delay p50 (ms)": _ms(stops["e-stop"], np.median),
                 "protective stop hold delay max (ms)": _ms(stops["protective stop"]),
                 "protective stop hold delay p50 (ms)": _ms(stops["protective stop"], np.median),
                 "stop -> hold received by the driver, max (ms)": _ms(stops["received"]),
                 "stop -> hold received by the driver, p50 (ms)": _ms(stops["received"], np.median)},
        "all commands": {k: val for k, val in v.items() if not isinstance(val, dict)},
        "commands by kind (the node's safety module)": v["commands_by_kind"],
        "beyond the step bound, by kind": v["beyond_step_by_kind"],
        "watchdog": {"trials": len(watchdog[0]), "last moving command, max (ms)": _ms(watchdog[0]),
                     "last moving command, p50 (ms)": _ms(watchdog[0], np.median),
                     "first repeated command, max (ms)": _ms(watchdog[1]),
                     "first repeated command, p50 (ms)": _ms(watchdog[1], np.median)},
        "no flood, 500 Hz valid": calm,
        "flood: 1500 Hz NaN + 500 Hz valid": {k: val for k, val in flood.items() if k != "cost"},
        "joint-state checks without ROS (this process)": flood["cost"],
        "sent by kind": dict(sorted(d.sent.items())),
    }  # fmt: skip
    rows = [{"phase": phase, "metric": k, "value": val} for phase, m in measured.items() for k, val in m.items()]
    rows += [{"phase": "beyond the step bound (each)", "metric": f"command {x['index']}", "value": x} for x in details]
    goals = [
        goal("hostile messages sent", 1500, hostile),
        goal("commands beyond the joint limits", 0, v["beyond_limits"] + v["non_finite"], "<="),
        goal("commands beyond the step bound of their kind", 0, v["beyond_step"], "<="),
        goal("walk-backs beyond the data-sheet step", 0, v["walk_beyond_data_sheet"], "<="),
        goal("commands beyond the lead bound from the true arm", 0, v["beyond_lead"], "<="),
        goal("e-stop: hold within 1 period (ms)", 1e3 * period, _ms(stops["e-stop"]), "<="),
        goal("protective stop (safety mode 3): hold within 1 period (ms)", 1e3 * period,
             _ms(stops["protective stop"]), "<="),
        goal("watchdog: motion stops within 2 periods + 10 ms (ms)", round(1e3 * (2 * period + 0.01), 3),
             _ms(watchdog[0]), "<="),
        goal("flood: control cycles published (fraction of 125 Hz)", 0.95, round(flood["cycles_ratio"], 4)),
        goal("flood: service round trip max (ms)", 100.0, round(1e3 * flood["service_max_s"], 2), "<="),
        goal("flood: RSS growth over the second half (MiB)", 5.0, round(flood["rss_end_mib"] - flood["rss_mid_mib"], 2), "<="),
        goal("node exit code after SIGINT", 0, code, "<="),
    ]  # fmt: skip
    notes = (f"Load average (1 min) at start / after fuzz / at end: {[round(x, 2) for x in load]} on a shared 2-core "
             f"machine. Lead bound checked: |command - true arm at its receipt| <= max_lead ({limits.max_lead[0]:.4f} "
             f"rad) + data-sheet speed x (watchdog + 10 ms) = {v['lead_bound_rad']:.4f} rad (the arm moves while "
             f"the measurement ages). Step bound: {limits.max_step[0]:.4f} rad/tick, checked on every consecutive pair "
             f"of commands of all phases, across stops and episode restarts; a command the node labels a walk-back "
             f"(on its command-kind topic, from its safety module's own state) is held to SafetyLimits.walk_steps at "
             f"the fastest the true arm moved at the last three receipts, at most the data sheet "
             f"({limits.max_velocity[0] * period:.4f} rad/tick). Stop hold delay: stop message published "
             f"-> the node published the first command of the constant hold (its header stamp; one DDS hop; the "
             f"delay to its receipt here, which adds this loaded client's own scheduling, is listed too). Watchdog "
             f"delay: last valid state published -> the node published its last moving command (every later one equals "
             f"it; the first repeated command, a tick later, is listed too), hostile states still flowing (all kinds "
             f"but 'old arm', a replay of the arm 0.1 s ago, which is plausible by design). Node's "
             f"exit summary: "
             f"{summary.split('] ', 2)[-1]}")  # fmt: skip
    scheduling = "node under SCHED_FIFO 20" if name.endswith("realtime") else "default scheduling"
    kinds = "on" if d.kinds_on else "off (--no-kinds: every command held to the per-tick step bound)"
    write_results(name, rows, goals, notes=f"Node: {scheduling}, command kinds {kinds}. " + notes, out_dir=out)


if __name__ == "__main__":
    sys.exit(main())
