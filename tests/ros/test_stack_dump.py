"""A running `ast-robot` process prints every thread's stack on SIGUSR1 and keeps running: the diagnostic the
ROS tests take from a node that does not stop in time, before they kill it."""

from __future__ import annotations

import signal
import time

import pytest
from sensor_msgs.msg import JointState

from tests.ros.helpers import RELIABLE, Proc, wait_until

pytestmark = pytest.mark.slow


def test_sigusr1_dumps_every_thread_and_the_twin_keeps_publishing(probe, tmp_path):
    twin = Proc(["twin", "--robot", "ur5e", "--camera-rate", "0", "--rate", "100"], tmp_path / "twin.log")
    states: list[JointState] = []
    try:
        probe.create_subscription(JointState, "/joint_states", states.append, RELIABLE)
        wait_until(probe, lambda: len(states) > 5, 30.0, "twin joint states")
        twin.p.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10.0
        while "most recent call first" not in twin.text() and time.monotonic() < deadline:
            time.sleep(0.1)
        n = len(states)
        wait_until(probe, lambda: len(states) > n + 5, 10.0, "joint states after the dump")
        assert twin.alive()
    finally:
        code = twin.stop()
    log = twin.text()
    assert "most recent call first" in log and "Thread 0x" in log, log[-2000:]
    assert code == 0, log[-2000:]
