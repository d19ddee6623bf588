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
    assert sim_receipt_time(9.96, 10.0) == 9.96  # delivered late (a queued sample): when it was taken
    assert sim_receipt_time(0.001, 10.0) == 10.0 - SAMPLE_LEAD_MAX_S  # a far-past stamp: bounded (and stale)
    assert sim_receipt_time(0.0, 10.0) == 10.0  # unstamped: the latest joint state's time
    assert sim_receipt_time(1e9, 10.0) == 10.0 + SAMPLE_LEAD_MAX_S  # a far-future stamp cannot stay fresh


def test_a_backlog_of_tracker_samples_delivered_at_once_keeps_the_newest():
    """A policy node that subscribed late gets the twin's queued samples (40 ms apart) after later joint states,
    in one burst; the episode's first sample follows. Counted at the latest joint state's time, the burst emptied
    the tracker's rate budget and that first sample was refused (the nominal twin then parted from the pipeline
    env at step 2). Counted at their stamps, all are taken and the newest is what the policy sees."""
    import numpy as np
    from ast_robot_ros.policy_node import sim_receipt_time

    from ast_robot.deploy.tracker import TrackerInput
    from ast_robot.robot.sampling import TRACKER_RATE_HZ

    cube = np.array([[0.5, -0.1, 0.02]])
    tracker, sim_now = TrackerInput(1, TRACKER_RATE_HZ), 4.472
    for k in range(10):  # stamps 4.112 .. 4.472, all delivered once the node's clock read 4.472
        stamp = round(4.112 + 0.04 * k, 3)
        tracker.offer(cube, sim_receipt_time(stamp, sim_now), stamp)
    first = cube + [0.0, 0.0, 1e-4]  # the episode's first sample, at the next joint state's time
    tracker.offer(first, sim_receipt_time(4.48, 4.48), 4.48)  # raised Rejected ("too fast") before
    positions, _ = tracker.latest(4.48)
    assert np.array_equal(positions, first)


def test_an_error_while_the_context_goes_down_is_the_stop_and_one_while_it_stays_up_is_not():
    from ast_robot_ros.policy_node import context_going_down

    calls = iter([True, True, True, False])  # a SIGINT's shutdown lands three polls after the exception
    assert context_going_down(lambda: next(calls), wait_s=1.0, poll_s=0.001)
    assert context_going_down(lambda: False)  # already down
    assert not context_going_down(lambda: True, wait_s=0.05, poll_s=0.001)  # a real error: raised
