"""`ast-robot twin --robot ur5e --hidden PARAMS.yaml`: run the MuJoCo twin behind the drivers' topics."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Run the simulated robot (twin) behind the drivers' ROS 2 topics.")
    parser.add_argument("--robot", default="ur5e", help="ur5e or fr3, or a robot YAML (configs/deploy/).")
    parser.add_argument("--hidden", default=None, help="YAML of hidden physical parameters (default: nominal).")
    parser.add_argument("--rate", type=float, default=None, help="/joint_states rate (Hz); default from the YAML.")
    parser.add_argument("--camera-rate", type=float, default=None, help="Camera rate (Hz; 0 = off).")
    parser.add_argument("--camera-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="Scene camera image (height, width) in pixels; default from the YAML.")  # fmt: skip
    parser.add_argument("--wrist-camera-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="Wrist camera image (height, width) in pixels (pick-and-place); default from the YAML.")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sensor noise.")
    parser.add_argument("--task", default="reach", choices=("reach", "pickplace"),
                        help="Scene: reach, or the envs' pick-and-place table (cubes and pads set on the twin_scene "
                             "topic, the gripper on the gripper command topic, the scene camera).")  # fmt: skip
    parser.add_argument("--sim-time", action="store_true",
                        help="Publish /clock and step the physics on simulated time, in lock-step with the policy "
                             "node (deploy --sim-time): outcomes independent of machine load. Default: wall clock.")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.twin.hidden import load_hidden

    io = load_robot_io(args.robot)
    if args.rate is not None:
        if not args.rate > 0:  # also rejects NaN
            raise ValueError(f"--rate: expected a /joint_states rate > 0 (Hz), got {args.rate}")
        io.joint_state_rate_hz = args.rate
    if args.camera_rate is not None:
        if not args.camera_rate >= 0:
            raise ValueError(f"--camera-rate: expected a rate >= 0 (Hz; 0 turns the camera off), got {args.camera_rate}")
        io.camera_rate_hz = args.camera_rate
    for flag, field in (("--camera-size", "camera_size"), ("--wrist-camera-size", "wrist_camera_size")):
        size = getattr(args, field)
        if size is not None:
            if not all(0 < n <= 4096 for n in size):
                raise ValueError(f"{flag}: expected a height and a width in 1..4096 pixels, got {size}")
            setattr(io, field, (int(size[0]), int(size[1])))
    hidden = load_hidden(args.hidden)
    from ast_robot.twin.node import main

    return main(io, hidden, seed=args.seed, sim_time=args.sim_time, task=args.task)
