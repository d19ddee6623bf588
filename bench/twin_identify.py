"""The analyzer on each hidden twin of bench/sim2real.py without ROS: is the true culprit named first?

For each twin of ``bench.sim2real.TWINS`` (and two sensor twins whose cause is the encoders): the demo's
round-0 policy deployed through the lock-step harness (:class:`ast_robot.twin.lockstep.LockstepDeployment`,
the policy node's session + safety module + the twin's physics, ROS-free) for ``--episodes`` seeded goals,
then the gap pipeline's system identification (:func:`ast_robot.gap.pipeline.run_sysid`, the demo config's
randomization) and its retune. Per twin: the parameters named (ranked), the first one's estimate against the
truth, whether the gap is reported unexplained, the retuned names; the null twin first (nothing named).
This stands in for the identification part of the full loop (which deploys over DDS and records a bag);
the same records reach the analyzer in both (the session's episode records).

    MUJOCO_GL=egl .venv/bin/python bench/twin_identify.py --policy RUN/round0/policy [--episodes 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402
from bench.sim2real import CONFIG, TWINS  # noqa: E402

SEED0 = 1000
EXTRA = [("nominal (null)", {}, {}),
         ("encoder bias 0.05 rad on joint 1", {"sensor_bias_rad": [0.0, 0.05, 0.0, 0.0, 0.0, 0.0]},
          {"encoder_offset_1": 0.05})]  # fmt: skip


def records(policy, cfg, hidden: dict, episodes: int) -> list:
    from ast_robot.config import RandomizationConfig
    from ast_robot.envs import make_env
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.lockstep import LockstepDeployment

    env = make_env(cfg.env, RandomizationConfig(enabled=False), seed=0, deploy=cfg.deploy)
    deployed = LockstepDeployment.build(policy, cfg.deploy.robot, cfg.deploy, cfg.env, hidden=HiddenParams(**hidden))
    out = []
    for i in range(episodes):
        env.reset(seed=SEED0 + i)
        out.append(deployed.run_episode(env.unwrapped.goal.copy()))
    env.close()
    return out


def identify(policy, twin: tuple, episodes: int) -> dict:
    from ast_robot.config import load_config
    from ast_robot.envs.randomization import resolve
    from ast_robot.gap.pipeline import data_sheet_limits, deployment_offsets, run_sysid
    from ast_robot.gap.retune import changed_names, retune

    name, hidden, truth = twin
    cfg = load_config(CONFIG)
    cfg.randomization = resolve(cfg.randomization)
    recs = records(policy, cfg, hidden, episodes)
    start = time.perf_counter()
    res, _, note = run_sysid(cfg, recs, None, 0, None)
    fit_s = time.perf_counter() - start
    if res is None:
        return {"twin": name, "note": note}
    named = list(res.culprits())
    first = named[0] if named else None
    est = res.estimate()
    rel = abs(est[first] - truth[first]) / abs(truth[first]) if first in truth and truth[first] else None
    new = retune(cfg.randomization, res, cfg.gap, deployment_offsets(cfg, recs), data_sheet_limits(cfg.deploy.robot))
    return {"twin": name, "hidden": hidden, "truth": truth, "real_success": sum(r.success for r in recs) / len(recs),
            "named": named, "first": first, "estimate": None if first is None else round(est[first], 4),
            "rel_error": rel, "culprit_ok": bool(truth) and rel is not None and rel <= 0.15,
            "null_ok": not truth and not named and not changed_names(cfg.randomization, new),
            "unexplained": res.gap_unexplained(), "unexplained_share": round(res.unexplained, 4),
            "retuned": list(changed_names(cfg.randomization, new)), "fit_s": round(fit_s, 1)}  # fmt: skip


def main() -> None:
    from ast_robot.deploy.runner import load_deploy_policy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args()
    policy = load_deploy_policy(Path(args.policy))
    rows = []
    for twin in EXTRA[:1] + TWINS + EXTRA[1:]:
        rows.append(identify(policy, twin, args.episodes))
        print(rows[-1], flush=True)
        write(rows, args)
    print(f"wrote {write(rows, args)}")


def write(rows: list[dict], args: argparse.Namespace) -> Path:
    twins = [r for r in rows if r.get("truth")]
    mean = lambda values: sum(values) / len(values) if values else None  # noqa: E731
    goals = [goal("hidden twins: true culprit named first with its value within 15% (fraction)", 0.9,
                  mean([r["culprit_ok"] for r in twins])),
             goal("null twin: nothing named, no range changed", 1.0,
                  mean([r["null_ok"] for r in rows if r.get("truth") == {}]))]  # fmt: skip
    notes = (f"ROS-free: policy {args.policy} deployed by the lock-step harness, {args.episodes} goals (seeds "
             f"{SEED0}..) per twin; identification = ast_robot.gap.pipeline.run_sysid on configs/experiments/"
             f"demo.yaml's randomization; truth in randomization units (latency: 25 Hz control steps).")
    return write_results("twin_identify", rows, goals, notes)


if __name__ == "__main__":
    main()
