"""`ast-robot gap-report --sim DIR --real BAG --out DIR [--config EXPERIMENT.yaml]`: the reality-gap report.

``--sim`` is an eval folder of episode records (``records.jsonl``); ``--real`` is a ROS 2 bag of
``/ast/outcome`` messages or a records folder. With ``--config`` (the experiment the sim records came
from) the randomized parameters are also fitted to the real trajectories and a retuned config is
written beside the report.
"""

from __future__ import annotations

import argparse

from ast_robot.cli.config_cmd import add_set_argument
from ast_robot.config.deploy import RosNames


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Compare sim and real episodes; identify parameters; retune ranges.")
    parser.add_argument("--sim", required=True, help="Folder of sim episode records (e.g. RUN_DIR/eval).")
    parser.add_argument("--real", required=True, help="ROS 2 bag of outcome records, or a records folder.")
    parser.add_argument("--out", required=True, help="New (or empty) folder for the report.")
    parser.add_argument(
        "--config", default=None, help="Experiment YAML of the sim run (enables sysid + retuning)."
    )
    parser.add_argument("--topic", default=RosNames().outcome, help="Outcome topic in the bag.")
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the fit, bootstrap and classifier folds."
    )
    add_set_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ast_robot.gap.pipeline import gap_report
    from ast_robot.runlog import progress

    console = Console()
    iterations = None
    if args.config:
        from ast_robot.config import load_config

        iterations = load_config(args.config, args.overrides).gap.cem_iterations
    with progress("system identification (CEM)", iterations, enabled=iterations is not None) as advance:
        result = gap_report(args.sim, args.real, args.out, args.config, args.overrides, args.seed, args.topic,
                            progress=lambda it, best: advance(1, best_mse=best))  # fmt: skip
    rep = result.report
    g = rep.success.gap
    console.print(f"success: sim {rep.success.sim.value:.1%} (n={rep.success.n_sim}), real {rep.success.real.value:.1%} "
                  f"(n={rep.success.n_real}); gap {g.value:+.1%} [{g.low:+.1%}, {g.high:+.1%}]")  # fmt: skip
    acc = rep.classifier.balanced_accuracy
    console.print(
        f"sim-vs-real classifier: {'-' if acc is None else f'{acc:.1%}'} balanced accuracy (held-out)"
    )
    if rep.sysid is not None:
        from ast_robot.gap.verdict import physics_sentences

        for line in physics_sentences(rep.sysid):  # the report's verdict, word for word
            console.print(line, markup=False)
    for line in rep.warnings:
        console.print(line, markup=False)
    if result.retuned_config is not None:
        console.print(f"retuned config: {result.retuned_config}")
    elif "retune" in rep.provenance:
        console.print(f"no retuned config: {rep.provenance['retune']}")
    console.print(f"report: {result.folder / 'report.html'}")
    return 0
