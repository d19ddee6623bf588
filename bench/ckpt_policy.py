"""A BC run's trainer checkpoint (``RUN/ckpt-<step>/``: weights + optimizer) as a run folder that the benches
evaluate (``--pixel-run``, bench/pixels_oracle.py ``--run``): ``OUT/policy/ckpt-<step>/`` and ``OUT/config.yaml``.

Choosing a checkpoint on validation seeds needs the policy of every ``train.checkpoint_every`` step, and a run
writes ``policy/`` (weights + deployment contract) only at its end. The policy's own state (its meta, the
contract) comes from ``--template``: a policy checkpoint of the same network and env (the run's start policy, or
its final one); only the weights are the trainer checkpoint's. Refused when the weights do not fit it.

    .venv/bin/python bench/ckpt_policy.py --ckpt RUN/ckpt-00000500 --template START_RUN/policy --out OUT
    (--ckpt A --ckpt B ...: the mean of their weights)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def convert(ckpt: Path | list[Path], template: Path, out: Path) -> Path:
    """``out`` (a run folder: ``policy/`` + ``config.yaml``) holding ``ckpt``'s weights in ``template``'s policy
    state; ValueError naming the file when the weights' names or shapes differ from the template's. Several
    checkpoints (of one run): their weights' mean (checkpoint averaging: a cheap stand-in for a weight average,
    which lowers the noise an lr leaves in the weights), stored under the last one's step."""
    from ast_robot.core.checkpoint import load_checkpoint, save_checkpoint

    policy = load_checkpoint(template)  # weights_only loads
    trained = [load_checkpoint(c) for c in (ckpt if isinstance(ckpt, list) else [ckpt])]
    for one in trained:
        _check_fits(one, policy)
    mine = {k: _mean([t.state["model"][k] for t in trained]) for k in trained[-1].state["model"]}
    state = {k: v for k, v in policy.state.items() if k not in ("rng", "step", "format_version")}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(trained[-1].config_text)
    return save_checkpoint(out / "policy", trained[-1].step, {**state, "model": mine}, trained[-1].config_text)


def _check_fits(trained: Any, policy: Any) -> None:
    from ast_robot.core.checkpoint import STATE_FILE

    mine, theirs = trained.state["model"], policy.state["model"]
    bad = sorted(k for k in set(mine) | set(theirs) if k not in mine or k not in theirs or mine[k].shape != theirs[k].shape)
    if bad:
        raise ValueError(f"{trained.path / STATE_FILE}: its weights do not fit the template {policy.path} ({len(bad)} "
                         f"names or shapes differ, e.g. {bad[:3]}); give a policy of the same network")  # fmt: skip


def _mean(tensors: list[Any]) -> Any:
    """The elementwise mean of floating tensors; others (counters, integer buffers) from the last checkpoint."""
    import torch

    if len(tensors) == 1 or not tensors[-1].is_floating_point():
        return tensors[-1]
    return torch.stack([t.float() for t in tensors]).mean(0).to(tensors[-1].dtype)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, action="append", required=True,
                   help="a trainer checkpoint folder RUN/ckpt-<step> (repeat: their weights' mean)")
    p.add_argument("--template", type=Path, required=True, help="a policy folder (or checkpoint) of the same network")
    p.add_argument("--out", type=Path, required=True, help="the run folder to write")
    args = p.parse_args(argv)
    print(convert(args.ckpt, args.template, args.out))


if __name__ == "__main__":
    main()
