"""Fixtures of the ROS 2 tests: one rclpy context per test, a probe node, child-process logs."""

from __future__ import annotations

import itertools

import pytest

rclpy = pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')

_ids = itertools.count()


@pytest.fixture
def probe():
    """A plain rclpy node in this test process (default context, shut down afterwards)."""
    rclpy.init()
    node = rclpy.create_node(f"probe_{next(_ids)}")
    yield node
    node.destroy_node()
    rclpy.shutdown()
