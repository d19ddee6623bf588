"""A run folder whose policy is another run's, same weights, with act()-time options set: what the benches
evaluate (``--pixel-run``, bench/pixels_oracle.py ``--run``) and a deployment loads.

Only options that leave the network and its weights alone may be set (``--set policy.estimate_filter=[10]``);
anything else would need training, and is refused with the list of the allowed ones.

    .venv/bin/python bench/policy_options.py --run RUN --out OUT --set policy.estimate_filter=[10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# act()-time only: no weight, no state entry depends on them
ACT_OPTIONS = ("policy.estimate_filter", "policy.place_presence")


def write(run: Path, out: Path, sets: list[str]) -> Path:
    """``out`` (config.yaml + policy/) = ``run``'s policy with ``sets`` (KEY=VALUE, ACT_OPTIONS only) applied to
    its stored config; ValueError naming the option when one is not allowed or its value is refused."""
    from ast_robot.config import PolicyConfig, apply_overrides, dump_config, from_dict, load_config, to_dict
    from ast_robot.core.checkpoint import load_checkpoint, save_checkpoint
    from ast_robot.policies.policy import META_KEY
    from ast_robot.run_layout import POLICY_DIR

    bad = [s for s in sets if s.partition("=")[0] not in ACT_OPTIONS]
    if bad:
        raise ValueError(f"--set {bad}: only act()-time options may change without training: {list(ACT_OPTIONS)}")
    cfg = load_config(run / "config.yaml", sets)  # validates (PolicyConfig.__post_init__)
    ckpt = load_checkpoint(run / POLICY_DIR)
    state = {k: v for k, v in ckpt.state.items() if k not in ("rng", "step", "format_version")}
    own = apply_overrides({"policy": state[META_KEY]["config"]}, sets)["policy"]  # the network's own config
    state[META_KEY] = {**state[META_KEY], "config": to_dict(from_dict(PolicyConfig, own, "policy"))}
    out.mkdir(parents=True, exist_ok=True)
    text = dump_config(cfg)
    (out / "config.yaml").write_text(text)
    return save_checkpoint(out / POLICY_DIR, ckpt.step, state, text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a run folder (config.yaml + policy/)")
    p.add_argument("--out", type=Path, required=True, help="the run folder to write")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help=f"one of {list(ACT_OPTIONS)}"
    )
    args = p.parse_args(argv)
    try:
        print(write(args.run, args.out, args.set))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
