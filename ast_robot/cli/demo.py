"""`ast-robot demo [CONFIG]`: the main job of `make demo`.

It runs the sim -> learn -> deploy-on-twin -> gap-report loop as far as the pieces exist, on the small
defaults of `configs/experiments/demo.yaml`, and says which stages are not built yet.
"""

from __future__ import annotations

import argparse
import time

from ast_robot.cli.config_cmd import add_set_argument

DEFAULT_CONFIG = "configs/experiments/demo.yaml"


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Run the sim -> learn -> deploy -> gap loop on small defaults.")
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="Experiment YAML.")
    parser.add_argument("--out", default=None, help="Run root (default: the config's run_root).")
    add_set_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ast_robot.config import dump_config, load_config
    from ast_robot.demo_loop import run_demo

    console = Console()
    cfg = load_config(args.config, args.overrides)
    if args.out:
        cfg.run_root = args.out
    console.rule(f"ast_robot demo: {cfg.name}")
    console.print(dump_config(cfg), highlight=False)
    start = time.perf_counter()
    results = run_demo(cfg, console)
    for stage, status in results:
        console.print(f"  {stage:<28} {status}")
    console.print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0
