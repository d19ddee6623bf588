"""`ast-robot episodes --n 10`: drive N episodes on a deployed policy node and save the outcomes.

Reach: goals are drawn (seeded) from the reach task's goal box, so real episodes are comparable with simulated
ones. `--task pickplace --robot ur5e|fr3`: each episode's table (cubes, pads, target) and instruction are
those of the seeded deployable pick-and-place env episode (``ast_robot.twin.pickplace.episode_sheets``),
published on the twin's scene topic. `--no-reset` leaves out the twin's reset service (for a real robot).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Run episodes on a deployed policy node and save the outcome records.")
    parser.add_argument("--n", "--episodes", dest="n", type=int, default=10, help="Episodes to run.")
    parser.add_argument("--task", choices=("reach", "pickplace"), default="reach", help="What the episodes are.")
    parser.add_argument("--robot", default="ur5e", help="pickplace: the robot whose env sets the tables.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the goal sequence.")
    parser.add_argument("--out", default=None, help="Records folder to write (ast_robot.records format).")
    parser.add_argument("--no-reset", action="store_true", help="Do not call the twin's reset service before episodes.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait for each outcome.")
    parser.add_argument("--sim-time", action="store_true", help="use_sim_time (the twin runs on simulated time).")
    parser.add_argument("--discovery-timeout", type=float, default=30.0,
                        help="Seconds to wait for the policy node and the twin to appear.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ast_robot.envs.reach import GOAL_HIGH, GOAL_LOW
    from ast_robot.records import EpisodeRecord, write_records

    if args.n <= 0:
        raise ValueError(f"--n must be > 0, got {args.n}")
    try:
        from ast_robot_ros.episode_driver import run as drive
        from ast_robot_ros.episode_driver import run_pickplace
    except ImportError as err:
        raise ImportError(f'episodes needs ROS 2 Python packages ({err}); pip install "ast-robot[ros]"') from err
    common = dict(reset=not args.no_reset, episode_timeout_s=args.timeout, sim_time=args.sim_time,
                  discovery_timeout_s=args.discovery_timeout)  # fmt: skip
    if args.task == "pickplace":
        from ast_robot.twin.pickplace import episode_sheets

        outcomes = run_pickplace(episode_sheets(args.robot, args.n, args.seed), **common)
    else:
        goals = np.random.default_rng(args.seed).uniform(GOAL_LOW, GOAL_HIGH, size=(args.n, 3))
        outcomes = drive(goals.tolist(), **common)
    records = [EpisodeRecord.from_dict(o) for o in outcomes]
    wins = sum(r.success for r in records)
    print(f"{wins}/{len(records)} episodes succeeded")
    if args.out:
        write_records(args.out, records)
        print(f"wrote {len(records)} records to {args.out}")
    return 0
