"""Single-render scenes: cheap, many, labelled training data for a pixel student's perception (issue 20).

A demonstration gives ~50 frames of ONE randomized layout; a perception trained on 500-800 demonstrations saw
500-800 layouts, camera poses and lightings, and missed by 3-6 cm on new ones. A scene here is one reset of a
randomized pick-and-place env (layout, colours, lights, camera pose, physics), the arm moved by IK to a random
TCP pose (near the named cube most often, where precision matters), sometimes holding the named cube, then ONE
render, labelled by projection (:mod:`ast_robot.envs.projection`): thousands of scenes per minute, no expert.

Each scene holds what a demonstration frame holds for the perception: the env's observation keys
(``observation``, ``camera``, ``instruction``), ``aux_target`` (6: the named cube's and its place's world
positions, m) and ``aux_pixels`` (6: the cube's, the place's and the TCP's image positions, row/col normalized);
with ``env.wrist_camera`` also ``wrist_camera`` and ``aux_wrist_pixels`` (4: the cube and the place in it).
No action: scenes train the perception only (the action stage learns from demonstrations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from ast_robot.envs.projection import image_coords
from ast_robot.envs.wrist import WRIST_CAMERA, WRIST_KEY
from ast_robot.robot.workspace import R_DOWN

FORMAT, VERSION = "ast_robot.scenes", 1
SCENE_KEYS = ("observation", "camera", "instruction", "aux_target", "aux_pixels")
NEAR_CUBE, NEAR_OTHER = 0.5, 0.25  # share of TCP poses near the named cube, near another cube or pad
HOLD = 0.2  # share of scenes with the named cube in the hand (carried toward its place)
TCP_LOW, TCP_HIGH = np.array([0.3, -0.27, 0.015]), np.array([0.65, 0.27, 0.3])  # uniform poses (m)


def _tcp_target(u: Any, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A TCP position (3,) for this scene and whether the named cube is held there."""
    cube, half = u.object_pos(u.target_object).copy(), u.half_size
    if rng.random() < HOLD:  # carrying: anywhere between the cube's start and above its place
        a = rng.random()
        xy = (1 - a) * cube[:2] + a * u.goal[:2] + rng.normal(0, 0.02, 2)
        return np.array([*xy, half + rng.uniform(0.0, 0.12)]), True
    r = rng.random()
    if r < NEAR_CUBE:
        anchor = cube
    elif r < NEAR_CUBE + NEAR_OTHER:
        others = [u.object_pos(i).copy() for i in range(len(u._obj_qadr))] + [u.goal.copy()]
        anchor = others[int(rng.integers(len(others)))]
    else:
        return rng.uniform(TCP_LOW, TCP_HIGH), False
    xy = anchor[:2] + rng.normal(0, 0.04, 2)
    return np.array([*xy, half + rng.exponential(0.05)]), False


def pose_scene(env: Any, seed: int) -> dict[str, np.ndarray]:
    """Reset ``env`` (deploy pick-and-place with a camera) with ``seed``, pose the arm, render once; one scene."""
    u = env.unwrapped
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    target, held = _tcp_target(u, rng)
    target = np.clip(target, TCP_LOW - [0.1, 0.1, 0.0], TCP_HIGH + [0.1, 0.1, 0.15])
    q = u._ik.solve(u.robot.home_qpos, target, R_DOWN).q
    u.data.qpos[u._qadr] = q
    low, high = u.robot.gripper_width
    width = 2 * u.half_size if held else rng.uniform(low, high)
    u.data.qpos[u._finger_qadr] = width / 2
    mujoco.mj_kinematics(u.model, u.data)
    if held:  # the cube centred at the TCP (where the expert grasps it), turned with a little yaw
        adr = u._obj_qadr[u.target_object]
        u.data.qpos[adr : adr + 3] = u.tcp_pos
    mujoco.mj_forward(u.model, u.data)
    u._prev_ee[:] = u.tcp_pos
    obs = u._get_obs()
    cube = u.object_pos(u.target_object).copy()
    points = np.stack([cube, u.goal, u.tcp_pos])
    scene = {"observation": obs["observation"].astype(np.float32), "camera": obs["camera"],
             "instruction": obs["instruction"], "aux_target": np.concatenate([cube, u.goal]).astype(np.float32),
             "aux_pixels": image_coords(env, points).reshape(6).astype(np.float32)}  # fmt: skip
    if WRIST_KEY in obs:  # the wrist camera's image and where the cube and the place are in it (NaN: behind)
        scene[WRIST_KEY] = obs[WRIST_KEY]
        scene["aux_wrist_pixels"] = image_coords(env, points[:2], WRIST_CAMERA, u.cfg.wrist_camera_size).reshape(4)
        scene["aux_wrist_pixels"] = scene["aux_wrist_pixels"].astype(np.float32)
    return scene


def make_scenes(env: Any, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` scenes (seeds ``seed .. seed + n - 1``), stacked: ``{key: (n, ...)}``."""
    if n < 1:
        raise ValueError(f"scenes: n must be >= 1, got {n}")
    if not getattr(env.unwrapped, "deploy", False):
        raise ValueError("scenes need the deploy pick-and-place layout (env.observation: deploy, camera, instruction)")
    rows = [pose_scene(env, seed + i) for i in range(n)]
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def write_scenes(path: str | Path, scenes: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """One ``.npz`` (uncompressed) with the scene arrays and a JSON ``meta`` entry (format, version, env)."""
    import json

    from ast_robot.fileio import atomic_write

    info = np.asarray(json.dumps({"format": FORMAT, "version": VERSION, **meta}))
    return atomic_write(path, lambda fh: np.savez(fh, **scenes, meta=info))


def scenes_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` entry of a scenes file (what :func:`write_scenes` was given, with format and version)."""
    import json

    with np.load(Path(path), allow_pickle=False) as f:
        if "meta" not in f.files:
            raise ValueError(f"{path}: not an {FORMAT} file (no meta entry)")
        return json.loads(str(f["meta"]))


def read_scenes(path: str | Path, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a scenes file; ValueError naming the file when it is not one or lacks ``keys``."""
    import json

    with np.load(Path(path), allow_pickle=False) as f:
        if "meta" not in f.files or json.loads(str(f["meta"])).get("format") != FORMAT:
            raise ValueError(f"{path}: not an {FORMAT} file (no meta entry with format {FORMAT!r})")
        need = list(SCENE_KEYS) if keys is None else list(keys)
        missing = sorted(set(need) - set(f.files))
        if missing:
            raise ValueError(f"{path}: scenes file lacks {missing}; it has {sorted(f.files)}")
        if keys is None:  # every array (a wrist camera's too)
            need = [k for k in f.files if k != "meta"]
        out = {k: f[k] for k in need}
    n = {len(v) for v in out.values()}
    if len(n) != 1:
        raise ValueError(f"{path}: scene arrays differ in length ({ {k: len(v) for k, v in out.items()} })")
    return out
