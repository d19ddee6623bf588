"""Roll a policy out in simulation and turn every episode into an episode record.

``evaluate(env, act, episodes)`` runs seeded episodes under the env's randomization and returns the
records (the schema of :mod:`ast_robot.records`), the success rate with its Wilson interval and the
success broken down by randomized parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.gap.stats import wilson_interval
from ast_robot.pick_outcome import PickJudge
from ast_robot.records import ContactSummary, EpisodeRecord, PickOutcome
from ast_robot.success import episode_outcome

ActFn = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class EvalResult:
    """Records plus the summary a person reads first."""

    records: list[EpisodeRecord]
    success_rate: float
    interval: tuple[float, float]  # Wilson interval of the success rate
    breakdown: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"episodes": len(self.records), "success_rate": self.success_rate,
                "ci_low": self.interval[0], "ci_high": self.interval[1], "breakdown": self.breakdown}  # fmt: skip


def reset_episode(act: Any) -> None:
    """Start of an episode for ``act``'s policy: ``act.__self__.reset_episode()`` where ``act`` is a bound method of
    an object that has one (a policy's ``act``), else nothing."""
    owner_reset = getattr(getattr(act, "__self__", None), "reset_episode", None)
    if callable(owner_reset):
        owner_reset()


def rollout(env: Any, act: ActFn, seed: int, meta: dict[str, Any] | None = None,
            frames: list[np.ndarray] | None = None, reset: Callable[[], None] | None = None) -> EpisodeRecord:  # fmt: skip
    """One episode from ``env.reset(seed=seed)`` to termination or truncation, as an EpisodeRecord.

    ``reset`` is called after the env reset (e.g. a scripted expert's); ``frames`` collects camera images. A policy
    whose bound ``act`` this is and that keeps state across calls is reset too (``reset_episode``: a `two_stage`
    student's estimate filter), so an episode never inherits the last one's estimate.
    """
    base = env.unwrapped
    obs, info = env.reset(seed=seed)
    reset_episode(act)
    if reset is not None:
        reset()
    actions, q, targets, forces, ee = [], [info["joint_positions"]], [], [], [info["ee_pos"]]
    max_qvel, first_success, step, done = 0.0, None, 0, False
    judge = pick_judge(base, info)
    while not done:
        action = np.asarray(act(obs), dtype=np.float64)
        obs, _, terminated, truncated, info = env.step(action)
        step += 1
        done = terminated or truncated
        actions.append(action)
        q.append(info["joint_positions"])
        targets.append(info["joint_targets"])
        ee.append(info["ee_pos"])
        forces.append(info["contact_force"])
        max_qvel = max(max_qvel, float(np.abs(info["joint_velocities"]).max()))
        if judge is not None:
            judge.step(step * base.control_dt, info["gripper_width"], info["ee_pos"], info["object_positions"])
        if info["is_success"] and first_success is None:
            first_success = step * base.control_dt
        if frames is not None:
            frames.append(base.render_camera())
    pick = None if judge is None else PickOutcome(**judge.outcome())
    return _record(base, seed, info, actions, q, targets, ee, forces, max_qvel, first_success, meta or {}, pick)


def pick_judge(base: Any, info: dict[str, Any]) -> PickJudge | None:
    """The pick-and-place judge of an env episode fed its first state (None for tasks without objects)."""
    if "object_positions" not in info:
        return None
    judge = PickJudge(base.robot.gripper_width, info["place"], int(info["target_object"]),
                      base.cfg.success_threshold, pose_source="sim")  # fmt: skip
    judge.step(0.0, info["gripper_width"], info["ee_pos"], info["object_positions"])
    return judge


def _record(base: Any, seed: int, info: dict[str, Any], actions: list, q: list, targets: list, ee: list,
            forces: list, max_qvel: float, first_success: float | None, meta: dict[str, Any],
            pick: PickOutcome | None = None) -> EpisodeRecord:  # fmt: skip
    # the one rule (ast_robot.success), as the deployment judges its episodes: the last state decides
    success, final_error = episode_outcome(info["distance"], base.cfg.success_threshold)
    forces_arr = np.asarray(forces, dtype=np.float64)
    touching = forces_arr[forces_arr > 0]
    contact = ContactSummary(max_force=float(forces_arr.max(initial=0.0)),
                             mean_force=float(touching.mean()) if touching.size else 0.0,
                             contact_steps=int(touching.size))  # fmt: skip
    path = float(np.linalg.norm(np.diff(np.asarray(ee), axis=0), axis=1).sum())
    return EpisodeRecord(
        robot=base.robot.name, task=base.task, seed=int(seed), source="sim", success=success,
        final_error=final_error, time_to_success=first_success if success else None,  # set: success is the last step's
        path_length=path, max_joint_velocity=max_qvel, control_dt=float(base.control_dt),
        actions=np.asarray(actions), joint_positions=np.asarray(q), joint_targets=np.asarray(targets),
        contact=contact, randomization=dict(info["dr"]), meta=meta, pick=pick,
        command_latency_s=getattr(base, "command_latency_s", None),  # what its safety filter declared (None: no filter)
    )  # fmt: skip


def evaluate(env: Any, act: ActFn, episodes: int, seed: int = 0, meta: dict[str, Any] | None = None,
             reset: Callable[[], None] | None = None, confidence: float = 0.95) -> EvalResult:  # fmt: skip
    """Run ``episodes`` seeded episodes (seeds ``seed, seed+1, ...``) and summarise them."""
    if episodes <= 0:
        raise ValueError(f"episodes must be > 0, got {episodes}")
    records = [rollout(env, act, seed + i, meta, reset=reset) for i in range(episodes)]
    wins = sum(r.success for r in records)
    interval = wilson_interval(wins, len(records), confidence)
    return EvalResult(records, wins / len(records), (interval.low, interval.high), success_by_parameter(records, confidence=confidence))


def success_by_parameter(records: list[EpisodeRecord], bins: int = 3,
                         confidence: float = 0.95) -> dict[str, list[dict[str, float]]]:  # fmt: skip
    """For each randomized parameter: success rate with its Wilson interval per value (discrete ones) or
    per equal-count bin."""
    names = sorted({k for r in records for k in r.randomization})
    wins = np.array([r.success for r in records], dtype=float)
    out: dict[str, list[dict[str, float]]] = {}
    for name in names:
        values = np.array([r.randomization.get(name, np.nan) for r in records], dtype=float)
        ok = np.isfinite(values)
        distinct = np.unique(values[ok])
        if distinct.size < 2:
            continue
        if distinct.size <= bins:  # e.g. latency in whole control steps
            groups = [(v, v, values == v) for v in distinct]
        else:
            edges = np.quantile(values[ok], np.linspace(0, 1, bins + 1))
            which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
            groups = [(edges[b], edges[b + 1], ok & (which == b)) for b in range(bins)]
        out[name] = [_bin(lo, hi, wins[m], confidence) for lo, hi, m in groups if m.any()]
    return out


def _bin(low: float, high: float, wins: np.ndarray, confidence: float) -> dict[str, float]:
    """One bin: its value range, episodes, success rate and the rate's Wilson interval (bins are small)."""
    ci = wilson_interval(int(wins.sum()), wins.size, confidence)
    return {"low": float(low), "high": float(high), "episodes": int(wins.size), "success_rate": ci.value,
            "success_low": ci.low, "success_high": ci.high}  # fmt: skip


def save_video(env: Any, act: ActFn, seeds: list[int], path: str | Path, fps: int = 12,
               reset: Callable[[], None] | None = None) -> Path:  # fmt: skip
    """Render a few episodes with the scene camera into a GIF (imageio)."""
    import imageio.v2 as imageio

    frames: list[np.ndarray] = []
    for seed in seeds:
        rollout(env, act, seed, frames=frames, reset=reset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.gif")
    imageio.mimsave(tmp, frames, duration=1.0 / fps, loop=0)
    tmp.replace(path)
    return path
