"""`ast-robot config show PATH [--set k=v ...]`: print the resolved config as YAML."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Inspect experiment configs.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="Print the resolved config (parents merged, overrides applied).")
    show.add_argument("path", help="Experiment YAML file.")
    add_set_argument(show)
    show.set_defaults(func=run)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """The shared `--set key=value` option (repeatable) of every command that loads a config."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="Override a field by dotted path, e.g. --set train.lr=3e-4 (repeatable).",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from ast_robot.config import dump_config, load_config

    print(dump_config(load_config(args.path, args.overrides)), end="")
    return 0
