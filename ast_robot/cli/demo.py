"""`ast-robot demo [CONFIG]`: the main job of `make demo`, the sim-to-real loop on small defaults.

It prints the resolved experiment config, then runs `ast-robot sim2real` for UR5e reach against the twin
whose hidden parameters (configs/twin/demo_hidden.yaml) lie outside the initial randomization ranges, and
prints the gap per round.
"""

from __future__ import annotations

import argparse
import time

from ast_robot.cli.sim2real import add_loop_arguments

DEFAULT_CONFIG = "configs/experiments/demo.yaml"
DEFAULT_HIDDEN = "configs/twin/demo_hidden.yaml"


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Run the sim -> learn -> deploy-on-twin -> gap loop on small defaults.")
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="Experiment YAML.")
    add_loop_arguments(parser, hidden=DEFAULT_HIDDEN)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ast_robot.cli.sim2real import run as run_sim2real
    from ast_robot.config import dump_config, load_config

    console = Console()
    cfg = load_config(args.config, args.overrides)
    console.rule(f"ast_robot demo: {cfg.name}")
    console.print(dump_config(cfg), highlight=False)
    start = time.perf_counter()
    code = run_sim2real(args)
    console.print(f"demo finished in {time.perf_counter() - start:.0f} s; every round's folder, report and "
                  f"retuned config are under {args.out or cfg.run_root}/{cfg.name}/")  # fmt: skip
    return code
