"""`ast-robot record` stopped by a signal in the middle of a message burst leaves a bag that reads back."""

from __future__ import annotations

import signal
import threading

import pytest
from sensor_msgs.msg import JointState

from tests.ros.helpers import Proc, wait_until


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_burst_leaves_a_readable_bag(probe, tmp_path, sig):
    # A signal used to raise KeyboardInterrupt inside the bag writer: half a record on disk, and the demo's
    # gap analysis failed with "Truncated record". The recorder is kept busy writing when the signal lands.
    from rosbags.highlevel import AnyReader

    pub = probe.create_publisher(JointState, "/joint_states", 100)
    msg = JointState(name=[f"joint{i}" for i in range(6)], position=[0.1] * 6, velocity=[0.0] * 6)
    for attempt in range(3):
        bag = tmp_path / f"bag{attempt}"
        recorder = Proc(["record", "--out", str(bag)], tmp_path / f"record{attempt}.log")
        wait_until(probe, lambda: pub.get_subscription_count() > 0, 30.0, "the recorder's subscription")
        stop = threading.Event()

        def publish_until_stopped(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                pub.publish(msg)

        burst = threading.Thread(target=publish_until_stopped)
        burst.start()
        try:
            wait_until(probe, lambda bag=bag: bag.exists(), 10.0, "the bag folder")
            threading.Event().wait(0.5)
            assert recorder.stop(sig) == 0, recorder.text()[-2000:]
        finally:
            stop.set()
            burst.join()
        with AnyReader([bag]) as reader:
            assert sum(1 for _ in reader.messages()) > 0
        wait_until(probe, lambda: pub.get_subscription_count() == 0, 30.0, "the recorder to leave")
