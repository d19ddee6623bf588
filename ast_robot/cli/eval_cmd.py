"""`ast-robot eval RUN_DIR --episodes 100`: success under randomization, breakdown, GIF and records."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(name, help="Evaluate a trained robot policy under randomization.")
    parser.add_argument("run_dir", help="Run directory written by `ast-robot train` (BC or SAC).")
    parser.add_argument("--episodes", type=int, default=100, help="Randomized episodes.")
    parser.add_argument("--video", type=int, default=3, help="Episodes rendered into eval/episodes.gif (0: none).")
    parser.add_argument("--seed", type=int, default=None, help="Seed of the first episode (default: held-out).")
    parser.add_argument("--checkpoint", choices=["auto", "best", "final"], default="auto",
                        help="SAC runs: the best periodic evaluation's model (best/), the final sac.zip, or "
                             "auto: best when the run kept one.")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console

    from ast_robot.config import load_config
    from ast_robot.run_layout import CONFIG_FILE, EVAL_DIR, EVAL_SUMMARY, is_sac_run, sac_checkpoint
    from ast_robot.trainers.common import evaluate_run, load_actor

    run_dir = Path(args.run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: no {CONFIG_FILE}")
    if args.episodes <= 0:
        raise ValueError(f"--episodes must be > 0, got {args.episodes}")
    cfg = load_config(run_dir / CONFIG_FILE)
    act = load_actor(cfg, run_dir, args.checkpoint)
    console = Console()
    if is_sac_run(run_dir):
        console.print(f"evaluating the {sac_checkpoint(run_dir, args.checkpoint)[1]}")
    evaluate_run(cfg, run_dir, act, episodes=args.episodes, video_episodes=args.video, seed=args.seed)
    summary = json.loads((run_dir / EVAL_DIR / EVAL_SUMMARY).read_text())
    console.print(f"success {summary['success_rate']:.1%} (95% CI {summary['ci_low']:.1%}-{summary['ci_high']:.1%}) "
                  f"over {summary['episodes']} randomized episodes; records in {run_dir / EVAL_DIR}")  # fmt: skip
    for name, bins in summary["breakdown"].items():
        cells = "  ".join(f"[{b['low']:.3g}, {b['high']:.3g}]: {b['success_rate']:.0%}" for b in bins)
        console.print(f"  {name:<22} {cells}")
    return 0
