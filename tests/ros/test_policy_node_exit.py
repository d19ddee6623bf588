"""The policy node's exit: rclpy's own clean-up failing after the session closed is reported, not raised."""

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
