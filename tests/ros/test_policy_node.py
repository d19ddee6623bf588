"""The policy node over loopback DDS: fuzzing, watchdog, e-stop, clean shutdown (test plays the robot)."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from tests.ros.helpers import RELIABLE, UR5E_JOINTS, Proc, spin_for, ur5e_limits, wait_until
from tests.ros.robot_double import RobotDouble

PERIOD = 1 / 125
FAR_GOAL = (-0.2, 0.5, 0.7)  # ~0.7 m from home: several seconds of motion at the default speed scale


@pytest.fixture
def node_proc(tmp_path):
    proc = Proc(["deploy", "scripted:reach", "--robot", "ur5e"], tmp_path / "deploy.log")
    yield proc
    proc.stop()


def assert_commands_safe(commands: list[tuple[float, np.ndarray]]) -> None:
    lower, upper, step = ur5e_limits()
    assert commands, "no commands were published"
    qs = np.array([q for _, q in commands])  # (N, J)
    assert np.all(np.isfinite(qs)), "non-finite command published"
    assert np.all(qs >= lower - 1e-9) and np.all(qs <= upper + 1e-9), "command outside the joint limits"
    assert np.all(np.abs(np.diff(qs, axis=0)) <= step + 1e-9), "command step beyond the velocity limit"


def malformed_joint_states(rng: np.random.Generator, now: float) -> list[tuple[list[str], list[float], float, str]]:
    """(names, positions, stamp, category) of hostile joint states; every one must be rejected."""
    names, n = UR5E_JOINTS, len(UR5E_JOINTS)
    bad = []
    for k in range(100):
        q = rng.normal(0, 1, n)
        q[rng.integers(n)] = [math.nan, math.inf, -math.inf][k % 3]
        bad.append((names, q.tolist(), now, "non-finite"))
        bad.append((names, rng.normal(0, 1, rng.integers(0, n)).tolist(), now, "too few positions"))
        bad.append((names + ["extra"], rng.normal(0, 1, n + 2).tolist(), now, "count mismatch"))
        bad.append((["x_" + s for s in names], rng.normal(0, 1, n).tolist(), now, "unknown names"))
        bad.append((names[:-1] + [names[0]], rng.normal(0, 1, n).tolist(), now, "repeated names"))
        bad.append((names, rng.normal(0, 1, n).tolist(), now - 5.0 - k, "out-of-order stamp"))
        bad.append((names, rng.normal(0, 1, n).tolist(), now + 60.0 + k, "future stamp"))
        bad.append(([], [], now, "empty"))
        bad.append(([f"j{i}" for i in range(200 + k)], [0.0] * (200 + k), now, "huge"))
    return bad


def malformed_images() -> list[Image]:
    cases = [("yuv422", 8, 8, 16, 128), ("rgb8", 8, 8, 24, 100), ("rgb8", 0, 8, 24, 0), ("rgb8", 8, 8, 10, 80),
             ("rgb8", 5000, 1, 3, 15000), ("32FC1", 4, 4, 16, 64), ("", 4, 4, 12, 48), ("bgr8", 4, 4, 12, 47)]  # fmt: skip
    out = []
    for _k in range(13):
        for enc, h, w, step, size in cases:
            out.append(Image(encoding=enc, height=h, width=w, step=step, data=bytes(size)))
    return out  # 104 images


@pytest.mark.slow
def test_fuzz_never_crashes_never_unsafe_and_counts_each_rejection(node_proc, probe):
    robot = RobotDouble(probe)
    pub_img = probe.create_publisher(Image, "/camera/image_raw", RELIABLE)
    robot.wait_connected()
    wait_until(probe, lambda: pub_img.get_subscription_count() > 0, 10.0, "camera subscription")
    robot.begin_episode(FAR_GOAL)
    rng = np.random.default_rng(0)
    states, images = malformed_joint_states(rng, time.time()), malformed_images()
    assert len(states) + len(images) >= 1000
    robot.follow = False  # hostile positions below must not become the "measured" state
    robot.auto = False  # interleave by hand: the hostile message must be the newest in the node's queue
    for i, (names, pos, stamp, _category) in enumerate(states):
        robot.state()  # a valid state keeps the loop alive
        robot.state(names, pos, stamp)
        if i % 8 == 0:
            pub_img.publish(images[(i // 8) % len(images)])
        spin_for(probe, 0.002)
    for img in images:
        pub_img.publish(img)
        spin_for(probe, 0.003)
    robot.stream(0.5)
    assert node_proc.alive(), node_proc.text()[-2000:]
    assert_commands_safe(robot.commands)
    assert node_proc.stop() == 0
    log = node_proc.text()
    # Joint states use a keep-last-16 queue taken once per tick (control wants the newest), so a loaded
    # machine may drop some before the node sees them. Rejections are counted per reason and logged as one
    # summary line at most once a second (a line per message starved control under a flood), plus the
    # totals at exit.
    summary = log.split("rejected messages:")[-1].splitlines()[0]
    counted = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", summary)}
    assert counted["joint_state"] >= 0.5 * len(states), f"only {counted} of {len(states)} hostile states seen"
    assert counted["image"] >= 0.5 * len(images), counted
    for reason in ("joint_state: non-finite", "joint_state: missing joints", "names/positions mismatch",
                   "repeated joint names", "stamp too old", "stamp in the future", "joint_state: too large",
                   "image: encoding", "image: data size"):  # fmt: skip
        assert reason in summary, f"no rejection counted with reason {reason!r}: {summary}"
    stamps = [float(m) for m in re.findall(r"\[(\d+\.\d+)\] \[ast_policy\]: rejected \d+ messages", log)]
    periodic = stamps[:-1]  # the last line flushes what was pending at exit
    assert periodic and np.all(np.diff(periodic) >= 0.99), f"rejection lines more often than once a second: {stamps}"
    assert "Traceback" not in log


def test_watchdog_holds_within_two_periods_after_state_stops(node_proc, probe):
    robot = RobotDouble(probe)
    robot.wait_connected()
    robot.begin_episode(FAR_GOAL)
    robot.stream(0.3)
    moving = [q for _, q in robot.commands[-5:]]
    assert any(not np.array_equal(a, b) for a, b in zip(moving, moving[1:])), "arm was not being driven"
    robot.auto = False  # no joint states any more
    last_state = time.monotonic()
    n_before = len(robot.commands)
    spin_for(probe, 0.3)
    after = robot.commands[n_before:]
    assert len(after) >= 10, "the node stopped publishing instead of holding"
    final = after[-1][1]
    held_from = next(i for i in range(len(after)) if all(np.array_equal(q, final) for _, q in after[i:]))
    # The hold repeats the last moving command. The control tick that first sees an age > 2 periods
    # publishes it: <= 3 periods after the last state, plus scheduling/DDS slack on a loaded 2-core machine.
    first_hold_time = after[held_from + 1][0] if held_from + 1 < len(after) else after[held_from][0]
    assert first_hold_time - last_state <= 3 * PERIOD + 0.03, first_hold_time - last_state
    # Count bound consistent with the time bound above: the ticks of 3 periods plus the same slack.
    assert held_from <= 3 + round(0.03 / PERIOD), f"{held_from} moving commands after the state stopped"
    assert "joint state stale" in node_proc.text()


def test_estop_holds_within_one_period(node_proc, probe):
    robot = RobotDouble(probe)
    pub_estop = probe.create_publisher(Bool, "/ast/estop", RELIABLE)
    robot.wait_connected()
    wait_until(probe, lambda: pub_estop.get_subscription_count() > 0, 10.0, "e-stop subscription")
    robot.begin_episode(FAR_GOAL)
    robot.stream(0.3)
    n_before = len(robot.commands)
    t_estop = time.monotonic()
    pub_estop.publish(Bool(data=True))
    robot.stream(0.3)
    after = robot.commands[n_before:]
    hold = after[-1][1]
    # the hold starts where the commands stop changing (its value may also be that of an earlier moving
    # command: the ideal servo reports commands as positions)
    first = next(i for i in range(len(after)) if all(np.array_equal(q, hold) for _, q in after[i:]))
    # The hold is at most one step from the last command, towards the last trusted measured position (the
    # arm trails its command): near a position the servo reported, never a jump.
    lead = 0.1 * np.pi * 0.5  # lead_s x the speed scale's speed (rad)
    assert min(np.abs(hold - q).max() for q in robot.reported) <= lead, "hold far from every measured position"
    # The node publishes the hold from the e-stop callback itself (no wait for a tick); what is measured
    # here adds two DDS hops and scheduling on a shared, often overloaded 2-core machine.
    assert after[first][0] - t_estop <= PERIOD + 0.03, after[first][0] - t_estop
    # Ticks already published, or run before the e-stop callback got the (shared, loaded) CPU.
    assert first <= 3 + round(0.03 / PERIOD), f"{first} moving commands after the e-stop"
    pub_estop.publish(Bool(data=False))
    n_release = len(robot.commands)
    robot.stream(0.3)
    resumed = [q for _, q in robot.commands[n_release:]]
    assert any(not np.array_equal(a, b) for a, b in zip(resumed, resumed[1:])), "did not resume after release"
    # The per-step limit holds through the whole stream: entering the hold and leaving it too.
    assert_commands_safe(robot.commands)


_CONFIGURE_FAILS = """
import sys, rclpy
from ast_robot_ros import policy_node as pn
def configure(self):  # the transition fails; with the signal, the context went invalid first
    if {signal}:
        rclpy.shutdown()
    return pn.TransitionCallbackReturn.FAILURE
pn.PolicyNode.trigger_configure = configure
sys.exit(pn.run("scripted:reach", "ur5e"))
"""


@pytest.mark.parametrize("signalled, code", [(True, 0), (False, 1)])
def test_failed_configure_exits_1_unless_a_signal_stopped_it(signalled, code):
    # A SIGTERM that lands while configure returns fails the transition (seen once under CI load): that is
    # the operator's stop (exit 0); a configuration that really failed exits 1.
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    done = subprocess.run([sys.executable, "-c", _CONFIGURE_FAILS.format(signal=signalled)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_shuts_down_cleanly(node_proc, probe, sig):
    robot = RobotDouble(probe)
    robot.wait_connected()
    assert node_proc.stop(sig) == 0
    assert "Traceback" not in node_proc.text()

