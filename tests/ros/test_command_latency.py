"""bench/command_latency.py, the step test a user runs to measure the command latency a deployment declares
(configs/deploy/<robot>.yaml ``command_latency_s``), on its null case and one known delay: the FR3 twin behind
ROS on wall-clock time, nominal (no latency: declare 0) and with a hidden 40 ms latency (declare 30-45 ms: the
estimate includes the DDS transport, 1-3 ms at load 7-12, which the deployment's commands take too, and the servo's
first 2 ms step, inside LAG_MARGIN_S). Measured by hand at load 7-12: nominal smallest 1.5 ms (median 6 ms), 40 ms twin
41.4 ms smallest, 43 ms median, declare 0.039; in one of 6 runs 0.041."""

from __future__ import annotations

import pytest

from tests.ros.helpers import Proc

rclpy = pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')


@pytest.mark.slow  # ~15 s per twin: its start-up and 6 steps out and back
@pytest.mark.parametrize("latency_s", [0.0, 0.04])
def test_the_step_test_finds_the_twins_command_latency(tmp_path, latency_s):
    from ast_robot.deploy.robot_io import load_robot_io
    from bench.command_latency import measure

    hidden = tmp_path / "hidden.yaml"
    hidden.write_text(f"latency_s: {latency_s}\n")
    twin = Proc(["twin", "--robot", "fr3", "--rate", "500", "--camera-rate", "0", "--hidden", str(hidden)],
                tmp_path / "twin.log")  # fmt: skip
    rclpy.init()
    try:
        row = measure(load_robot_io("fr3"), joint=5, step=0.02, trials=6, timeout_s=60.0)
    finally:
        rclpy.shutdown()
        assert twin.stop() == 0, twin.text()[-2000:]
    assert row["moved"] == 6, row
    assert row["smallest_s"] >= latency_s, row  # the first move comes after the delay, never before
    assert latency_s - 0.01 <= row["declare_s"] <= latency_s + 0.005, row
