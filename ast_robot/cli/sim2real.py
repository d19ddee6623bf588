"""`ast-robot sim2real CONFIG --rounds K --hidden TWIN.yaml`: the whole loop, one folder per round."""

from __future__ import annotations

import argparse

from ast_robot.cli.config_cmd import add_set_argument


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Train -> sim eval -> deploy on the twin -> gap report -> retune, K rounds.")
    parser.add_argument("config", help="Experiment YAML (a BC reach experiment, e.g. configs/experiments/demo.yaml).")
    add_loop_arguments(parser, hidden=None)
    parser.set_defaults(func=run)


def add_loop_arguments(parser: argparse.ArgumentParser, hidden: str | None) -> None:
    """The options `sim2real` and `demo` share."""
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of the loop.")
    parser.add_argument("--hidden", default=hidden, help="Twin hidden parameters YAML (the stand-in 'real' robot).")
    parser.add_argument("--real-episodes", type=int, default=10, help="Episodes on the twin per round.")
    parser.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID of the loop's processes.")
    parser.add_argument("--out", default=None, help="Run root (default: the config's run_root).")
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from ast_robot.sim2real import sim2real

    if args.rounds <= 0 or args.real_episodes <= 0:
        raise ValueError(f"--rounds and --real-episodes must be > 0, got {args.rounds} and {args.real_episodes}")
    if args.domain is None:
        args.domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    console = Console()
    results = sim2real(args.config, args, console)
    console.rule("gap per round")
    for result in results:
        console.print(result.line())
    return 0
