"""`ast-robot train CONFIG [--set k=v ...] [--resume RUN_OR_CKPT]`: train with the trainer `train.type` names."""

from __future__ import annotations

import argparse
import json

from ast_robot.cli.config_cmd import add_set_argument


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Train a model (vision, language, or robot trainers) from an experiment YAML.")
    parser.add_argument("config", help="Experiment YAML file, e.g. configs/experiments/vision_digits.yaml.")
    add_set_argument(parser)
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="Continue from a checkpoint directory or a run directory (uses its latest).")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ast_robot.config import load_config
    from ast_robot.core import distributed
    from ast_robot.trainers import TRAINERS

    cfg = load_config(args.config, args.overrides)
    train = TRAINERS.get(cfg.train.type_name)
    info = distributed.init_distributed(cfg.train.device)  # no-op unless started by torchrun
    try:
        metrics = train(cfg, args.resume, show_progress=not args.no_progress and info.is_main)
    finally:
        distributed.cleanup()
    if info.is_main:
        print(json.dumps({"run": f"{cfg.run_root}/{cfg.name}", "world_size": info.world, **metrics}, indent=1))
    return 0
