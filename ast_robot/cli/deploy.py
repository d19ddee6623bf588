"""`ast-robot deploy CHECKPOINT --robot ur5e`: run the policy node (lifecycle, auto-activated).

CHECKPOINT is a policy checkpoint directory (a BC run's `policy/`, a SAC run), or `scripted:reach` for the
proportional reach controller (a baseline that exercises the deployment path without a trained policy).
The checkpoint's deployment contract (ast_robot.robot.contract) is checked before ROS starts: a checkpoint for
another robot, a task whose interfaces the robot's deploy config lacks, an unknown observation layout or a
checkpoint without a contract is refused with one line (the node's configure checks it again).
"""

from __future__ import annotations

import argparse

from ast_robot.cli.config_cmd import add_set_argument


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Run the ROS 2 policy node on a robot or the twin.")
    parser.add_argument("checkpoint", help="Policy checkpoint directory, or 'scripted:reach'.")
    parser.add_argument("--robot", default="ur5e", help="ur5e or fr3, or a robot YAML (configs/deploy/).")
    parser.add_argument("--config", default=None, help="Experiment YAML whose `deploy:` section to use.")
    parser.add_argument("--sim-time", action="store_true",
                        help="use_sim_time: follow a twin on simulated time (twin --sim-time), one tick per joint "
                             "state, policy inline. Default: wall clock (a real robot).")  # fmt: skip
    add_set_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ast_robot.config import DeployConfig, load_config
    from ast_robot.deploy.loader import check_contract, read_contract
    from ast_robot.deploy.robot_io import load_robot_io

    io = load_robot_io(args.robot)  # validate before starting ROS
    if not args.checkpoint.startswith("scripted:") and not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"checkpoint: {args.checkpoint} does not exist (a checkpoint directory or "
                                f"'scripted:reach')")  # fmt: skip
    check_contract(read_contract(args.checkpoint, io.robot), io.robot, io, args.checkpoint)  # ContractError: 1 line
    if args.config:
        cfg = load_config(args.config, args.overrides).deploy
    else:
        cfg = DeployConfig(robot=io.robot)
        if args.overrides:  # keys are DeployConfig fields, e.g. --set control_hz=500
            from ast_robot.config import apply_overrides, from_dict, to_dict

            cfg = from_dict(DeployConfig, apply_overrides(to_dict(cfg), args.overrides), "deploy")
    if not args.checkpoint.startswith("scripted:"):  # a bad checkpoint: one line here, before ROS starts
        from ast_robot.deploy.runner import load_deploy_policy

        load_deploy_policy(args.checkpoint)
    try:
        from ast_robot_ros.policy_node import run as run_node
    except ImportError as err:
        raise ImportError(f'deploy needs ROS 2 Python packages ({err}); pip install "ast-robot[ros]"') from err
    return run_node(args.checkpoint, args.robot, cfg, args=SIM_TIME_ARGS if args.sim_time else None)


SIM_TIME_ARGS = ["--ros-args", "-p", "use_sim_time:=true"]  # rclpy's own parameter for a /clock-driven clock
