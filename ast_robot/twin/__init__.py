"""The stand-in "real" robot: a MuJoCo arm with hidden physical parameters behind the drivers' topics.

``sim`` (physics and command semantics) and ``hidden`` (the secret parameters) have no ROS import;
``node`` is the rclpy adapter. Nothing in training or in ``ast_robot.gap`` may import this package.
"""
