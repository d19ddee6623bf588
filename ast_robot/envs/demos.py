"""Demonstrations from the scripted experts: collection, on-disk format and loader.

On-disk format (version 1), one folder per collection::

    DIR/meta.json            {"format": "ast_robot.demos", "version": 1, "env_id", "env_config",
                              "randomization", "seed", "episodes", "successes", "success_rate",
                              "files": ["episode_00000.npz", ...]}
    DIR/episode_00000.npz    one episode of T steps (numpy .npz, uncompressed):
        observation    (T+1, D) float64   observations, reset observation first
        achieved_goal  (T+1, 3) float64
        desired_goal   (T+1, 3) float64
        camera         (T+1, H, W, 3) uint8     only when the env has a camera
        instruction    (L,) uint8               only with instructions (UTF-8, zero padded)
        action         (T, A) float32           the expert's actions (what behaviour cloning imitates)
        executed_action (T, A) float32          only with noise injection: the actions given to env.step
        noise          () float64               std of the injected noise (0: the expert's actions ran as they are)
        reward         (T,) float64
        is_success     (T,) bool
        joint_positions (T+1, n) float64, ee_pos (T+1, 3) float64, contact_force (T,) float64
        dr_names       (K,) str                 randomized parameter names (sorted)
        dr_values      (K,) float64             their values in this episode (info["dr"])
        success        () bool                  is_success of the last step
        seed           () int64                 the reset seed (re-running it replays the episode)

Files are written atomically, so an interrupted collection leaves only whole episodes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.fileio import atomic_write, atomic_write_json

FORMAT, VERSION = "ast_robot.demos", 1
_STEP_KEYS = ("observation", "achieved_goal", "desired_goal", "camera")


@dataclass(frozen=True)
class Episode:
    """One loaded demonstration (arrays as documented in this module)."""

    arrays: dict[str, np.ndarray]

    @property
    def success(self) -> bool:
        return bool(self.arrays["success"])

    @property
    def dr(self) -> dict[str, float]:
        return dict(zip(self.arrays["dr_names"].tolist(), self.arrays["dr_values"].tolist()))

    @property
    def instruction(self) -> str:
        raw = self.arrays.get("instruction")
        return "" if raw is None else bytes(raw).rstrip(b"\0").decode("utf-8")

    def __len__(self) -> int:
        return int(self.arrays["action"].shape[0])


def run_episode(env: Any, expert: Any, seed: int, noise: float = 0.0) -> dict[str, np.ndarray]:
    """Roll out ``expert`` in ``env`` from ``reset(seed=seed)``; returns the episode's arrays.

    ``noise`` > 0 injects noise DART-style (Laskey et al. 2017): the env executes the expert's action plus
    Gaussian noise of std ``noise`` (action units) on the motion dimensions, not the gripper, and the
    record keeps the expert's clean action, so that the demonstrations show how the (closed-loop) expert
    recovers from the drift a cloned policy makes. The noise has its own generator seeded by ``seed``: the
    env's randomization and its own noise draws are those of the clean episode.
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (std, action units), got {noise}")
    obs, info = env.reset(seed=seed)
    expert.reset()
    rng = np.random.default_rng([seed, 0xDA27])
    steps: dict[str, list] = {k: [obs[k]] for k in _STEP_KEYS if k in obs}
    steps.update(joint_positions=[info["joint_positions"]], ee_pos=[info["ee_pos"]])
    acts, executed, rewards, succ, force = [], [], [], [], []
    done = False
    while not done:
        action = expert.act(obs)
        run = _perturbed(action, noise, rng) if noise > 0 else action
        obs, reward, terminated, truncated, info = env.step(run)
        executed.append(run)
        done = terminated or truncated
        for k in steps:
            steps[k].append(obs[k] if k in obs else info[k])
        acts.append(action)
        rewards.append(reward)
        succ.append(info["is_success"])
        force.append(info["contact_force"])
    out = {k: np.asarray(v) for k, v in steps.items()}
    out.update(action=np.asarray(acts, dtype=np.float32), reward=np.asarray(rewards), is_success=np.asarray(succ),
               contact_force=np.asarray(force), success=np.asarray(bool(succ[-1])), seed=np.asarray(seed, dtype=np.int64),
               dr_names=np.asarray(sorted(info["dr"]), dtype=str),
               dr_values=np.asarray([info["dr"][k] for k in sorted(info["dr"])], dtype=np.float64))  # fmt: skip
    out["noise"] = np.asarray(float(noise))
    if noise > 0:
        out["executed_action"] = np.asarray(executed, dtype=np.float32)
    if "instruction" in obs:
        out["instruction"] = obs["instruction"]
    return out


def _perturbed(action: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``action`` plus N(0, noise) on every dimension but the last (the gripper), clipped to [-1, 1]."""
    out = action.copy()
    out[:-1] = np.clip(out[:-1] + rng.normal(0.0, noise, size=out.shape[0] - 1), -1.0, 1.0)
    return out


def write_episode(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write one episode atomically as an .npz file."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write(path, lambda fh: fh.write(buffer.getvalue()))


def write_meta(out_dir: str | Path, meta: dict[str, Any]) -> Path:
    return atomic_write_json(Path(out_dir) / "meta.json", {"format": FORMAT, "version": VERSION, **meta})


def read_meta(path: str | Path) -> dict[str, Any]:
    """``meta.json`` of a demo folder, checked for format and version."""
    import json

    meta_path = Path(path) / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a demo folder: no meta.json")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(
            f"{meta_path}: format {meta.get('format')!r} v{meta.get('version')} is not {FORMAT} v{VERSION}"
        )
    return meta


def iter_demos(path: str | Path) -> Iterator[Episode]:
    """Episodes of a demo folder in order, loaded one at a time."""
    meta = read_meta(path)
    for name in meta["files"]:
        with np.load(Path(path) / name, allow_pickle=False) as data:
            yield Episode({k: data[k] for k in data.files})


def load_demos(path: str | Path) -> list[Episode]:
    """Every episode of a demo folder."""
    return list(iter_demos(path))
