"""The `ast-robot` command. Each subcommand lives in its own module with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import io
import os
import signal
import sys

# Subcommand name -> module. Only working subcommands are listed here.
SUBCOMMANDS: dict[str, str] = {
    "config": "ast_robot.cli.config_cmd",
    "demo": "ast_robot.cli.demo",
    "train": "ast_robot.cli.train",
    "demos": "ast_robot.cli.demos",
    "eval": "ast_robot.cli.eval_cmd",
    "gap-report": "ast_robot.cli.gap_report",
    "deploy": "ast_robot.cli.deploy",
    "twin": "ast_robot.cli.twin",
    "record": "ast_robot.cli.record",
    "episodes": "ast_robot.cli.episodes",
    "sim2real": "ast_robot.cli.sim2real",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ast-robot", description="Robot learning with a sim-to-real loop.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        importlib.import_module(module_name).add_parser(sub, name)
    return parser


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 PID` prints every thread's stack to stderr and the process goes on: where a stuck node waits.
    Only where stderr is a real file (called in-process, e.g. under pytest's capture, it has no descriptor)."""
    try:
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (AttributeError, ValueError, io.UnsupportedOperation):
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point. Config and input errors (a bad file included) print one clear line and exit 2; a missing
    optional extra (ImportError with its install line), a failed step (RuntimeError) or any other error
    prints one line and exits 1. ``AST_ROBOT_DEBUG=1`` raises instead, with the whole traceback."""
    from ast_robot.config import ConfigError
    from ast_robot.fileio import one_line

    args = build_parser().parse_args(argv)
    _stacks_on_sigusr1()
    debug = bool(os.environ.get("AST_ROBOT_DEBUG"))
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        if debug:
            raise
        print(f"ast-robot {args.command}: config error: {one_line(str(err), 2000)}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as err:
        if debug:
            raise
        print(f"ast-robot {args.command}: error: {one_line(str(err), 2000)}", file=sys.stderr)
        return 2
    except Exception as err:  # ImportError, RuntimeError and anything unforeseen: one line, never a traceback
        if debug:  # the whole traceback, e.g. for an error from deep in torch
            raise
        what = str(err) if isinstance(err, (ImportError, RuntimeError)) else f"{type(err).__name__}: {err}"
        print(f"ast-robot {args.command}: error: {one_line(what, 2000)} (AST_ROBOT_DEBUG=1 shows the traceback)",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
