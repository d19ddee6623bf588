"""Package list only (everything else is in pyproject.toml).

The top-level `envs/` folder holds MJCF data; it is installed as `ast_robot.mjcf` so code finds it with
`importlib.resources.files("ast_robot.mjcf")` both from an editable install and from a wheel. The
randomization presets (`configs/randomization/`, the files `preset: default` names) and the robots' driver
wiring (`configs/deploy/`) ship the same way, as `ast_robot.presets` and `ast_robot.deploy_configs`
(`ast_robot.config.shipped` finds them).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["ast_robot", "ast_robot.*"]) + ["ast_robot.mjcf", "ast_robot.presets",
                                                                   "ast_robot.deploy_configs", "ast_robot_ros"],
    # The ROS 2 adapters (also an ament_python package under ros2_ws/) ship in the wheel too, so that
    # `ast-robot deploy` runs them from the pip-installed rclpy wheels without colcon.
    package_dir={"ast_robot.mjcf": "envs", "ast_robot.presets": "configs/randomization",
                 "ast_robot.deploy_configs": "configs/deploy",
                 "ast_robot_ros": "ros2_ws/src/ast_robot_ros/ast_robot_ros"},
)
