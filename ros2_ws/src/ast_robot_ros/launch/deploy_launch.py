"""Launch the policy lifecycle node (auto configured and activated), optionally with the twin and a recorder.

    ros2 launch ast_robot_ros deploy_launch.py checkpoint:=/runs/x/ckpt-100 robot:=ur5e
    ros2 launch ast_robot_ros deploy_launch.py checkpoint:=scripted:reach use_twin:=true bag:=/tmp/run1
"""

import os

import launch
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description():
    config_dir = os.path.join(get_package_share_directory("ast_robot_ros"), "config")
    robot = LaunchConfiguration("robot")
    robot_yaml = PythonExpression(["'", config_dir, "/' + '", robot, "' + '.yaml'"])
    bag = LaunchConfiguration("bag")
    policy = LifecycleNode(
        package="ast_robot_ros",
        executable="policy_node",
        name="ast_policy",
        namespace="",
        output="screen",
        parameters=[{"checkpoint": LaunchConfiguration("checkpoint"), "robot": robot_yaml,
                     "control_hz": LaunchConfiguration("control_hz")}],
    )
    configure = EmitEvent(event=ChangeState(
        lifecycle_node_matcher=launch.events.matches_action(policy), transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=policy, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=launch.events.matches_action(policy),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription([
        DeclareLaunchArgument("checkpoint", description="Policy checkpoint directory or scripted:reach"),
        DeclareLaunchArgument("robot", default_value="ur5e", description="ur5e or fr3"),
        DeclareLaunchArgument("control_hz", default_value="125.0", description="Control rate (Hz)"),
        DeclareLaunchArgument("use_twin", default_value="false", description="Start the MuJoCo twin too"),
        DeclareLaunchArgument("hidden", default_value="", description="Twin hidden parameters YAML"),
        DeclareLaunchArgument("bag", default_value="", description="Record outcomes + joint states here"),
        Node(package="ast_robot_ros", executable="twin_node", name="ast_twin", output="screen",
             arguments=["--robot", robot_yaml], condition=IfCondition(LaunchConfiguration("use_twin"))),
        Node(package="ast_robot_ros", executable="recorder_node", name="ast_recorder", output="screen",
             arguments=["--out", bag], condition=IfCondition(PythonExpression(["'", bag, "' != ''"]))),
        activate,
        policy,
        configure,
    ])
