"""A trained policy extended by new network options (issue 20: the FR3 student's ``scene_resolution: full`` and
``gripper_prior``), as a run folder that ``--pixel-init`` fine-tunes from: ``OUT/policy/`` + ``OUT/config.yaml``.

Every weight of ``--from`` is loaded where the extended network has it (PolicyBase.load_extended); the new modules
keep their fresh initialization (``full``'s merge starts at zero: the same maps, sampled finer). The gripper
prior's centre MLP starts random, and a random centre would pin the gripper map anywhere at step 0 and send the
fine-tune's first hundreds of steps into undoing that; ``--fit-prior DEMOS`` fits it first (it alone, Adam) on the
TCP's ``target_pixels`` of those demos, from the inputs it sees (the TCP and the free keypoints of the loaded stem).

    .venv/bin/python bench/extend_policy.py --from RUN/policy --set scene_resolution=full --set gripper_prior=2 \
        --fit-prior DEMOS --out OUT
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def extend(source: Path, sets: list[str], out: Path) -> tuple[Any, Any, list[str]]:
    """(extended policy, the source checkpoint, the fresh tensors' names); ``sets``: ``key=value`` of ``policy.``"""
    import yaml

    from ast_robot.config import from_dict, to_dict
    from ast_robot.config.policy import PolicyConfig
    from ast_robot.core.checkpoint import load_checkpoint
    from ast_robot.policies.policy import PolicyBase, build_policy

    old = PolicyBase.load(source)
    ckpt = load_checkpoint(source)
    values = to_dict(old.cfg)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or key not in values:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY a policy field, e.g. scene_resolution=full")
        values[key] = yaml.safe_load(value)
    policy = build_policy(from_dict(PolicyConfig, values, "policy"), old.spec, old.action_dim)
    fresh = policy.load_extended(old.state_dict(), str(source))
    return policy, ckpt, fresh


def fit_prior(policy: Any, demos: Path, steps: int = 2000, rows: int = 6000) -> float:
    """Fit the gripper prior's centre MLP alone on ``rows`` frames of ``demos``; returns its median error
    (half-resolution cells) on those frames."""
    import torch

    from ast_robot.envs.demos import load_demos
    from ast_robot.policies.policy import AUX_SCALE, PIXEL_KEY
    from ast_robot.trainers.bc import DemoData

    perception = policy.perception
    if perception.prior is None:
        raise ValueError("--fit-prior needs --set gripper_prior=SIGMA (> 0)")
    data = DemoData.from_episodes(load_demos(demos), list(policy.spec), aux=True)
    if PIXEL_KEY not in data.get(torch.arange(1)).inputs:
        raise ValueError(f"{demos}: its episodes record no target_pixels (the prior's targets)")
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:rows]
    inputs, targets = [], []
    with torch.no_grad():  # the prior's inputs, computed once (the stem is frozen here)
        for chunk in idx.split(256):
            b = data.get(chunk).inputs
            free = perception.free(torch.nn.functional.gelu(perception.stem(_image(b)))).flatten(2)
            xy = free.softmax(-1) @ perception.grid  # the free keypoints stay on the half-resolution grid
            presence = (free.logsumexp(-1) - free.mean(-1)) * 0.1
            tcp = AUX_SCALE * b["observation"][:, policy.tcp].float()
            inputs.append(torch.cat([xy.flatten(1), presence, tcp], -1))
            targets.append(b[PIXEL_KEY].float()[:, 4:6])
    x, y = torch.cat(inputs), torch.cat(targets)
    opt = torch.optim.Adam(perception.prior.parameters(), 1e-3)
    for _ in range(steps):
        j = torch.randint(0, len(x), (512,))
        loss = (perception.prior(x[j]) - y[j]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        err = ((perception.prior(x) - y) * perception.cells).norm(dim=-1)
    return float(err.median())


def _image(batch: Any) -> Any:
    from ast_robot.policies.encoders import IMAGE_KEY, prepare_image

    return prepare_image(batch[IMAGE_KEY])


def save(policy: Any, ckpt: Any, out: Path) -> Path:
    """``out/policy`` (the source's contract and step, the extended config) and ``out/config.yaml``."""
    import yaml

    from ast_robot.config import to_dict
    from ast_robot.core.checkpoint import save_checkpoint

    config = yaml.safe_load(ckpt.config_text)
    config["policy"] = to_dict(policy.cfg)
    text = yaml.safe_dump(config, sort_keys=False)
    state = {k: v for k, v in ckpt.state.items() if k not in ("rng", "step", "format_version")}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(text)
    return save_checkpoint(out / "policy", ckpt.state.get("step", 0), {**state, **policy.checkpoint_state()}, text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", type=Path, required=True, help="a policy folder (or checkpoint)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a policy option to switch on")
    p.add_argument("--fit-prior", type=Path, default=None, metavar="DEMOS", help="fit the gripper prior's centre first")
    p.add_argument("--out", type=Path, required=True, help="the run folder to write")
    args = p.parse_args(argv)
    import torch

    torch.manual_seed(0)  # the fresh modules' initialization
    t0 = time.perf_counter()
    policy, ckpt, fresh = extend(args.source, args.set, args.out)
    print(f"extended {args.source}: {len(fresh)} fresh tensors {fresh}")
    if args.fit_prior is not None:
        print(f"gripper prior fitted on {args.fit_prior}: median {fit_prior(policy, args.fit_prior):.2f} cells")
    print(f"{save(policy.eval(), ckpt, args.out)} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
