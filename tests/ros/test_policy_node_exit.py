"""The policy node's pure helpers: rclpy's clean-up failing after the session closed is reported, not raised;
sim-time samples count at their stamp within a bounded lead."""

from __future__ import annotations


def test_rclpy_cleanup_reports_a_failure_in_one_line_and_goes_on(capsys):
    from ast_robot_ros.policy_node import _rclpy_cleanup

    def failing() -> None:
        raise RuntimeError("Unable to convert call argument '0' to Python object")

    _rclpy_cleanup("destroy_node", failing)  # must not raise: the stop itself is complete
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rclpy destroy_node at exit raised RuntimeError" in err[0] and "(failing)" in err[0]


def test_rclpy_cleanup_is_silent_when_the_cleanup_succeeds(capsys):
    from ast_robot_ros.policy_node import _rclpy_cleanup

    done = []
    _rclpy_cleanup("shutdown", lambda: done.append(True))
    assert done == [True] and capsys.readouterr().err == ""


def test_a_sim_time_sample_counts_at_its_stamp_within_a_bounded_lead():
    from ast_robot_ros.policy_node import SAMPLE_LEAD_MAX_S, sim_receipt_time

    assert sim_receipt_time(10.008, 10.0) == 10.008  # the twin's sample for the next state: at its stamp
    assert sim_receipt_time(11.0, 10.0) == 11.0  # the first sample after /twin/reset's 1 s pause
    assert sim_receipt_time(9.0, 10.0) == 10.0  # an old stamp counts now (its age is checked from there)
    assert sim_receipt_time(1e9, 10.0) == 10.0 + SAMPLE_LEAD_MAX_S  # a far-future stamp cannot stay fresh
