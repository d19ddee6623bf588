"""`ast-robot sim2real CONFIG --rounds K --hidden TWIN.yaml`: the whole loop, one folder per round."""

from __future__ import annotations

import argparse

from ast_robot.cli.config_cmd import add_set_argument


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Train -> sim eval -> deploy on the twin -> gap report -> retune, K rounds.")
    parser.add_argument("config", help="Experiment YAML of a BC experiment: reach (configs/experiments/demo.yaml) or "
                                       "pick-and-place (configs/experiments/pickplace_demo.yaml).")
    add_loop_arguments(parser, hidden=None)
    parser.add_argument("--start-policy", default=None,
                        help="A trained run folder (or its policy/) deployed in round 0 as it is, fine-tuned in later "
                             "rounds (e.g. a pixel student; default: round 0 trains from scratch on scripted demos). "
                             "Its deployment contract must match the experiment's env.")  # fmt: skip
    parser.add_argument("--demo-pool", default=None,
                        help="A demos folder (ast-robot demos collect) the loop's pool of demonstrations starts with; "
                             "each round adds its own to it.")  # fmt: skip
    parser.add_argument("--scenes-pool", default=None,
                        help="A scenes file (train.scenes_file of the start policy's training) every trained round "
                             "trains on as it is, beside the demo pool, in place of train.scenes: a fine-tune that "
                             "replays what the student learnt from keeps it. Its env and image sizes must match.")  # fmt: skip
    parser.set_defaults(func=run)


def add_loop_arguments(parser: argparse.ArgumentParser, hidden: str | None) -> None:
    """The options `sim2real` and `demo` share."""
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of the loop.")
    parser.add_argument("--hidden", default=hidden, help="Twin hidden parameters YAML (the stand-in 'real' robot).")
    parser.add_argument("--real-episodes", type=int, default=10, help="Episodes on the twin per round.")
    parser.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID of the loop's processes.")
    parser.add_argument("--out", default=None, help="Run root (default: the config's run_root).")
    parser.add_argument("--wall-clock", action="store_true",
                        help="Run the twin on wall-clock time (default: simulated time in lock-step with the "
                             "policy node, so the outcomes do not depend on the machine's load).")  # fmt: skip
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads of the loop's training, evaluation and analysis (default 1: on "
                             "2 cores shared with the twin or other jobs, 2 threads trained the pick-and-place policy "
                             "7-12x slower, bench/results/sim2real_threads.md).")  # fmt: skip
    parser.add_argument("--no-physical-feedback", dest="physical_feedback", action="store_false",
                        help="Fine-tune later rounds on the retuned ranges alone, without weighting the simulated "
                             "samples by the real outcomes (the ablation of the physical-feedback weights: without it they "
                             "weight each demonstration's loss, train.feedback_mix).")  # fmt: skip
    add_set_argument(parser)


def check_hidden(path: str | None) -> None:
    """Fail before training, not in the twin child after it: the file must exist and parse.

    Only this CLI layer opens it (to check it); the loop hands the path to the twin and never reads the
    values (DESIGN.md: learning and analysis learn about the twin only through outcomes)."""
    if path is None:
        return
    from ast_robot.twin.hidden import load_hidden

    try:
        load_hidden(path)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"--hidden {path}: {err}") from err


def run(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from ast_robot.sim2real import sim2real

    if args.rounds <= 0 or args.real_episodes <= 0 or args.torch_threads <= 0:
        raise ValueError(f"--rounds, --real-episodes and --torch-threads must be > 0, got {args.rounds}, "
                         f"{args.real_episodes} and {args.torch_threads}")  # fmt: skip
    check_hidden(args.hidden)
    if args.domain is None:
        args.domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    console = Console()
    results = sim2real(args.config, args, console)
    console.rule("gap per round")
    for result in results:
        console.print(result.line())
    return 0
