"""`ros2 run ast_robot_ros <node>` entry points: parse arguments, hand over to the adapters."""

from __future__ import annotations

import argparse
import sys


def _split(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """(all arguments for rclpy, the non-ROS arguments for argparse)."""
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv if argv is None else argv)
    return argv, [a for a in remove_ros_args(argv)[1:] if a != ""]  # launch passes "" for unset options


def policy_main(argv: list[str] | None = None) -> int:
    """Policy lifecycle node; configuration through ROS parameters (checkpoint, robot, control_hz, ...)."""
    from ast_robot_ros.policy_node import run

    ros_args, _ = _split(argv)
    return run("", "ur5e", args=ros_args)


def twin_main(argv: list[str] | None = None) -> int:
    """MuJoCo twin: `twin_node --robot ur5e|PATH.yaml [--hidden PARAMS.yaml] [--rate HZ] [--seed N]`."""
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.twin.hidden import load_hidden
    from ast_robot.twin.node import main

    ros_args, rest = _split(argv)
    parser = argparse.ArgumentParser(prog="twin_node")
    parser.add_argument("--robot", default="ur5e")
    parser.add_argument("--hidden", default=None)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(rest)
    io = load_robot_io(args.robot)
    if args.rate:
        io.joint_state_rate_hz = args.rate
    return main(io, load_hidden(args.hidden), seed=args.seed, args=ros_args)


def recorder_main(argv: list[str] | None = None) -> int:
    """Bag recorder: `recorder_node --out BAG [--storage mcap|sqlite3]`."""
    from ast_robot.records.bag import recorded_topics
    from ast_robot_ros.recorder_node import run

    ros_args, rest = _split(argv)
    parser = argparse.ArgumentParser(prog="recorder_node")
    parser.add_argument("--out", required=True)
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    args = parser.parse_args(rest)
    run(args.out, recorded_topics(), args.storage, args=ros_args)
    return 0
