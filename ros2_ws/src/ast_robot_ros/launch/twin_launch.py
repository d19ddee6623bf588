"""Launch the MuJoCo twin: `ros2 launch ast_robot_ros twin_launch.py robot:=ur5e hidden:=/path/params.yaml`."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node


def generate_launch_description():
    config_dir = os.path.join(get_package_share_directory("ast_robot_ros"), "config")
    robot = LaunchConfiguration("robot")
    robot_yaml = PythonExpression(["'", config_dir, "/' + '", robot, "' + '.yaml'"])
    hidden = LaunchConfiguration("hidden")
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="ur5e", description="ur5e or fr3"),
        DeclareLaunchArgument("hidden", default_value="", description="YAML of hidden physical parameters"),
        Node(
            package="ast_robot_ros",
            executable="twin_node",
            name="ast_twin",
            output="screen",
            arguments=["--robot", robot_yaml,
                       PythonExpression(["'--hidden' if '", hidden, "' else ''"]), hidden],
        ),
    ])
