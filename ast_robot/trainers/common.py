"""What the robot trainers (BC, SAC) share: the deployment contract they write, the final evaluation, and
loading a run's trained policy for acting (``ast-robot eval``, the benchmarks).

File and folder names come from :mod:`ast_robot.run_layout`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ast_robot.run_layout import EVAL_DIR, EVAL_SUMMARY, POLICY_DIR, SAC_FILE, is_sac_run, sac_checkpoint


def contract_of(env: Any) -> Any:
    """The :class:`~ast_robot.robot.contract.DeploymentContract` of the env a policy was trained in."""
    from ast_robot.robot.contract import DeploymentContract

    return DeploymentContract.from_env(env)


def write_contract(folder: Path, contract: Any) -> Path:
    """``contract.json`` beside an SB3 model (atomic)."""
    from ast_robot.fileio import atomic_write_json
    from ast_robot.run_layout import CONTRACT_FILE

    return atomic_write_json(Path(folder) / CONTRACT_FILE, contract.to_dict())


def evaluate_run(cfg: Any, run_dir: Path, act: Any, episodes: int, env: Any = None,
                 video_episodes: int = 0, seed: int | None = None) -> dict[str, float]:  # fmt: skip
    """Evaluate ``act`` under the run's randomization; writes records + summary under ``run_dir/eval``."""
    from ast_robot.envs import make_env
    from ast_robot.evaluation import evaluate, save_video
    from ast_robot.fileio import atomic_write_json
    from ast_robot.records import write_records

    env = env or make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    seed = cfg.seed + 2_000_000 if seed is None else seed  # held-out seeds, never the demos' ones
    result = evaluate(env, act, episodes, seed=seed, meta={"run": str(run_dir)})
    out = run_dir / EVAL_DIR
    write_records(out, result.records)
    atomic_write_json(out / EVAL_SUMMARY, result.summary())
    if video_episodes:
        save_video(env, act, [seed + i for i in range(video_episodes)], out / "episodes.gif")
    return {"success_rate": result.success_rate, "success_ci_low": result.interval[0],
            "success_ci_high": result.interval[1]}  # fmt: skip


def load_actor(cfg: Any, run_dir: Path, which: str = "auto") -> Any:
    """``act(obs) -> action`` of a run's trained policy (BC: ``policy/``; SAC: ``sac.zip`` of
    :func:`~ast_robot.run_layout.sac_checkpoint`: the best periodic evaluation's when kept, unless ``which='final'``)."""
    run_dir = Path(run_dir)
    if is_sac_run(run_dir):
        from ast_robot.integrations.sb3.actor import load_sac_actor

        folder, _ = sac_checkpoint(run_dir, which)
        return load_sac_actor(cfg, folder)
    if (run_dir / POLICY_DIR).is_dir():
        from ast_robot.core.checkpoint import POLICY_EXPECTED
        from ast_robot.fileio import reading
        from ast_robot.policies.policy import PolicyBase

        with reading(run_dir / POLICY_DIR, POLICY_EXPECTED):
            return PolicyBase.load(run_dir / POLICY_DIR).act
    raise FileNotFoundError(f"{run_dir} holds no trained policy: expected {POLICY_DIR}/ (BC) or {SAC_FILE} (SAC)")
