"""`ast-robot record --out BAG`: write the outcome records and the joint states to a ROS 2 bag (rosbags);
with `--camera-rate 2` also the camera images (the scene camera's and the wrist camera's), thinned to 2 a second (``ast_robot.records.bag.read_bag_images``)."""

from __future__ import annotations

import argparse

from ast_robot.config.deploy import RosNames

NAMES = RosNames()


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Record outcome records and joint states to an MCAP/sqlite3 bag.")
    parser.add_argument("--out", required=True, help="New bag folder to create.")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="Bag storage format.")
    parser.add_argument("--duration", type=float, default=None, help="Stop after this many seconds.")
    parser.add_argument("--no-joint-states", action="store_true", help="Record only the outcome topic.")
    parser.add_argument("--outcome-topic", default=NAMES.outcome, help="Outcome topic.")
    parser.add_argument("--joint-states-topic", default=NAMES.joint_states, help="Joint state topic.")
    parser.add_argument("--camera-rate", type=float, default=0.0,
                        help="Also record the camera images, at most this many a second (0: none; e.g. 2).")
    parser.add_argument("--camera-topic", default=NAMES.camera, help="Camera image topic.")
    parser.add_argument("--wrist-camera-topic", default=NAMES.wrist_camera,
                        help="Wrist camera image topic, recorded with the camera's (empty: none).")  # fmt: skip
    parser.add_argument("--sim-time", action="store_true", help="use_sim_time: stamp bag entries with /clock.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if Path(args.out).exists():
        raise ValueError(f"--out: {args.out} exists already; a bag needs a new folder")
    if not args.camera_rate >= 0:
        raise ValueError(f"--camera-rate: expected images per second >= 0 (0: no images), got {args.camera_rate}")
    if args.duration is not None and not args.duration > 0:
        raise ValueError(f"--duration: expected seconds > 0, got {args.duration}")
    from ast_robot.records.bag import recorded_topics
    from ast_robot.records.stream import IMAGE

    names = RosNames(outcome=args.outcome_topic, joint_states=args.joint_states_topic, camera=args.camera_topic,
                     wrist_camera=args.wrist_camera_topic)  # fmt: skip
    topics = recorded_topics(names, joint_states=not args.no_joint_states, camera=args.camera_rate > 0)
    rates = {t: args.camera_rate for t, kind in topics.items() if kind == IMAGE} or None
    try:
        from ast_robot_ros.recorder_node import run as record
    except ImportError as err:
        raise ImportError(f'record needs ROS 2 Python packages ({err}); pip install "ast-robot[ros]"') from err
    from ast_robot.cli.deploy import SIM_TIME_ARGS

    counts = record(args.out, topics, args.storage, args.duration, args=SIM_TIME_ARGS if args.sim_time else None,
                    outcome_topic=args.outcome_topic, max_rate_hz=rates)
    print(f"wrote {args.out}: " + ", ".join(f"{t}: {n} messages" for t, n in counts.items()))
    return 0
