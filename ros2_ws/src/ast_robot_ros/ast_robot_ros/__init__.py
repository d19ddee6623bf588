"""ROS 2 adapters of ast_robot: the policy node, the twin node and the outcome recorder.

Every node here is a thin adapter: message <-> plain values, timers and services. The logic lives in
``ast_robot.deploy`` (no rclpy there) and ``ast_robot.twin``.
"""
