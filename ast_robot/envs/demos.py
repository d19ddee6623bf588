"""Demonstrations from the scripted experts: collection, on-disk format and loader.

On-disk format (version 1), one folder per collection::

    DIR/meta.json            {"format": "ast_robot.demos", "version": 1, "env_id", "env_config",
                              "randomization", "seed", "episodes", "successes", "success_rate",
                              "files": ["episode_00000.npz", ...]}
    DIR/episode_00000.npz    one episode of T steps (numpy .npz, uncompressed):
        observation    (T+1, D) float64   observations, reset observation first
        achieved_goal  (T+1, 3) float64         from info in the deploy layout (privileged: never a policy input
        desired_goal   (T+1, 3) float64         there, since the BC data takes only the env's observation keys)
        camera         (T+1, H, W, 3) uint8     only when the env has a camera
        wrist_camera   (T+1, h, w, 3) uint8     only with env.wrist_camera (`demos collect --wrist-camera`; older
                                                files and folders without it lack it, and load as before)
        instruction    (L,) uint8               only with instructions (UTF-8, zero padded)
        action         (T, A) float32           the expert's actions (what behaviour cloning imitates)
        executed_action (T, A) float32          with noise injection or a DAgger driver: the actions given to env.step
        noise          () float64               std of the injected noise (0: the expert's actions ran as they are)
        relabelled     () bool                  another driver (DAgger's student) chose the executed actions; the
                                                expert's labels are kept even when the episode failed (older
                                                files lack it: False)
        reward         (T,) float64
        is_success     (T,) bool
        joint_positions (T+1, n) float64, ee_pos (T+1, 3) float64, contact_force (T,) float64
        target_pixels  (T+1, 6) float64         pick-and-place with a camera: achieved goal, desired goal, TCP in the
                                                scene camera's image (row, col each; ast_robot.envs.projection),
                                                privileged supervision for a pixel student (older files lack it)
        wrist_pixels   (T+1, 4) float64         with wrist_camera: the achieved and desired goal in the wrist camera's
                                                image (row, col each, normalized as target_pixels); a point
                                                behind the camera is WRIST_BEHIND (outside [-1, 1]: unseen)
        dr_names       (K,) str                 randomized parameter names (sorted)
        dr_values      (K,) float64             their values in this episode (info["dr"])
        success        () bool                  is_success of the last step
        seed           () int64                 the reset seed (re-running it replays the episode)

Files are written atomically, so an interrupted collection leaves only whole episodes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.fileio import BadFile, atomic_write, atomic_write_json, check_nonempty, read_json, reading

FORMAT, VERSION = "ast_robot.demos", 1
_STEP_KEYS = ("observation", "achieved_goal", "desired_goal", "camera", "wrist_camera")
WRIST_BEHIND = 9.0  # wrist_pixels of a point behind the wrist camera (finite, so the file check holds; the loss skips it)


@dataclass(frozen=True)
class Episode:
    """One loaded demonstration (arrays as documented in this module)."""

    arrays: Mapping[str, np.ndarray]  # a dict, or ImagesOnDisk (camera images read from ``source`` when asked)
    source: Path | None = None  # the .npz file it was loaded from (errors name it)

    @property
    def success(self) -> bool:
        return bool(self.arrays["success"])

    @property
    def relabelled(self) -> bool:
        """Whether a student drove and the expert only labelled (DAgger): its labels are good even on failure."""
        return bool(self.arrays.get("relabelled", False))

    @property
    def dr(self) -> dict[str, float]:
        return dict(zip(self.arrays["dr_names"].tolist(), self.arrays["dr_values"].tolist()))

    @property
    def instruction(self) -> str:
        raw = self.arrays.get("instruction")
        return "" if raw is None else bytes(raw).rstrip(b"\0").decode("utf-8")

    def __len__(self) -> int:
        return int(self.arrays["action"].shape[0])


def run_episode(env: Any, expert: Any, seed: int, noise: float = 0.0, driver: Any = None) -> dict[str, np.ndarray]:
    """Roll out ``expert`` in ``env`` from ``reset(seed=seed)``; returns the episode's arrays.

    ``noise`` > 0 injects noise DART-style (Laskey et al. 2017): the env executes the expert's action plus
    Gaussian noise of std ``noise`` (action units) on the motion dimensions, not the gripper, and the
    record keeps the expert's clean action, so that the demonstrations show how the (closed-loop) expert
    recovers from the drift a cloned policy makes. The noise has its own generator seeded by ``seed``: the
    env's randomization and its own noise draws are those of the clean episode.

    ``driver(obs, expert_action) -> action`` (DAgger, :mod:`ast_robot.envs.dagger`) chooses the executed
    action instead (e.g. a student policy's); the expert still labels every visited state, and the episode
    is marked ``relabelled`` so that behaviour cloning keeps its labels even when the driver failed.
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (std, action units), got {noise}")
    obs, info = env.reset(seed=seed)
    expert.reset()
    rng = np.random.default_rng([seed, 0xDA27])
    steps: dict[str, list] = {k: [obs[k] if k in obs else info[k]] for k in _STEP_KEYS if k in obs or k in info}
    steps.update(joint_positions=[info["joint_positions"]], ee_pos=[info["ee_pos"]])  # goals: info in deploy layout
    pixels = "camera" in obs and env.unwrapped.task == "pickplace"  # image positions of the target and place
    if pixels:
        steps["target_pixels"] = [_target_pixels(env, steps)]
    wrist = pixels and "wrist_camera" in obs  # the same points in the wrist camera's image
    if wrist:
        steps["wrist_pixels"] = [_wrist_pixels(env, steps)]
    acts, executed, rewards, succ, force = [], [], [], [], []
    done = False
    while not done:
        action = expert.act(obs)
        run = action if driver is None else np.asarray(driver(obs, action), dtype=np.float32)
        run = _perturbed(run, noise, rng) if noise > 0 else run
        obs, reward, terminated, truncated, info = env.step(run)
        executed.append(run)
        done = terminated or truncated
        for k in steps:
            if k not in ("target_pixels", "wrist_pixels"):
                steps[k].append(obs[k] if k in obs else info[k])
        if pixels:
            steps["target_pixels"].append(_target_pixels(env, steps))
        if wrist:
            steps["wrist_pixels"].append(_wrist_pixels(env, steps))
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
    if noise > 0 or driver is not None:
        out["executed_action"] = np.asarray(executed, dtype=np.float32)
    out["relabelled"] = np.asarray(driver is not None)
    if "instruction" in obs:
        out["instruction"] = obs["instruction"]
    return out


def _target_pixels(env: Any, steps: dict[str, list]) -> np.ndarray:
    """(6,): the last recorded achieved goal's, desired goal's and TCP's normalized image positions (row, col each)."""
    from ast_robot.envs.projection import image_coords

    points = np.stack([steps["achieved_goal"][-1], steps["desired_goal"][-1], steps["ee_pos"][-1]])
    return image_coords(env, points).reshape(6)


def _wrist_pixels(env: Any, steps: dict[str, list]) -> np.ndarray:
    """(4,): the last recorded achieved and desired goal in the wrist camera's image (row, col each; behind the
    camera: ``WRIST_BEHIND``), the targets of the wrist perception's heat maps (as ``aux_wrist_pixels`` of scenes)."""
    from ast_robot.envs.projection import image_coords
    from ast_robot.envs.wrist import WRIST_CAMERA

    points = np.stack([steps["achieved_goal"][-1], steps["desired_goal"][-1]])
    coords = image_coords(env, points, WRIST_CAMERA, env.unwrapped.cfg.wrist_camera_size).reshape(4)
    return np.nan_to_num(coords, nan=WRIST_BEHIND)


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
    """``meta.json`` of a demo folder, checked for format, version, ``env_id`` and ``files``."""
    meta_path = Path(path) / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a demo folder: no meta.json")
    meta = read_json(meta_path, f"the JSON metadata of an {FORMAT} v{VERSION} folder")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        shown = f"format {meta.get('format')!r} v{meta.get('version')}" if isinstance(meta, dict) else "no object"
        raise BadFile(meta_path, f"{shown} is not {FORMAT} v{VERSION}",
                      "a folder written by `ast-robot demos collect`")  # fmt: skip
    files, env_id = meta.get("files"), meta.get("env_id")
    if not isinstance(env_id, str) or not env_id:
        raise BadFile(meta_path, f"env_id {env_id!r}", "the env id the demonstrations were recorded in")
    if not isinstance(files, list) or not all(_plain_npz_name(f) for f in files):
        shown = "the 'files' entry is missing" if files is None else f"files {str(files)[:80]!r}"
        raise BadFile(meta_path, shown,
                      "a list of the folder's episode .npz file names (no paths)")  # fmt: skip
    return meta


def _plain_npz_name(name: Any) -> bool:
    return isinstance(name, str) and name.endswith(".npz") and Path(name).name == name and name != ".npz"


EPISODE_EXPECTED = ("an episode .npz of `ast-robot demos collect` (numeric arrays: observation (T+1, D), "
                    "achieved_goal/desired_goal (T+1, 3), finite action (T, A), success, dr_names, dr_values)")  # fmt: skip
# key -> number of dimensions; these must be present in every episode
_REQUIRED = {"observation": 2, "achieved_goal": 2, "desired_goal": 2, "action": 2, "success": 0, "dr_names": 1,
             "dr_values": 1}  # fmt: skip
_PER_STEP = {"action": 0, "reward": 0, "is_success": 0, "contact_force": 0, "executed_action": 0,  # T rows
             "observation": 1, "achieved_goal": 1, "desired_goal": 1, "camera": 1, "joint_positions": 1,
             "ee_pos": 1, "target_pixels": 1, "wrist_camera": 1, "wrist_pixels": 1}  # T + 1 rows  # fmt: skip
_IMAGES = ("camera", "wrist_camera")  # (T+1, H, W, 3) uint8


class ImagesOnDisk(Mapping):
    """An episode's arrays with its camera images left in its file and read again on each access.

    The loop's demo pool replays hundreds of pixel episodes every round (~4 MB of images each, 2.9 GB for the
    700-episode pool of the UR5e student); held in memory beside the training data built from them, the images
    were counted twice. The file was checked when loaded (:func:`read_episode`); it must stay in place."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        self._path = path
        self._small = {k: v for k, v in arrays.items() if k not in _IMAGES}
        self._images = tuple(k for k in _IMAGES if k in arrays)

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._small:
            return self._small[key]
        if key not in self._images:
            raise KeyError(key)
        with reading(self._path, EPISODE_EXPECTED), np.load(self._path, allow_pickle=False) as data:
            return data[key]

    def __contains__(self, key: object) -> bool:  # Mapping's default would read an image to answer
        return key in self._small or key in self._images

    def __iter__(self) -> Iterator[str]:
        yield from self._small
        yield from self._images

    def __len__(self) -> int:
        return len(self._small) + len(self._images)


def read_episode(path: str | Path, images_in_memory: bool = True) -> Episode:
    """One episode file, loaded without pickles and checked (keys, shapes, finite values). ``images_in_memory``
    False: its camera images are read from the file when asked for (:class:`ImagesOnDisk`), not kept."""
    path = check_nonempty(path, EPISODE_EXPECTED)
    with reading(path, EPISODE_EXPECTED):
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        check_episode(arrays)
    return Episode(arrays if images_in_memory else ImagesOnDisk(Path(path), arrays), path)


def check_episode(arrays: dict[str, np.ndarray]) -> None:
    """ValueError naming the first bad array of one episode (see the module docstring for the format)."""
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"arrays {missing} are missing (it has {sorted(arrays)})")
    for key, ndim in _REQUIRED.items():
        if arrays[key].ndim != ndim:
            raise ValueError(f"{key} has shape {arrays[key].shape}, expected {ndim} dimensions")
    steps = arrays["action"].shape[0]
    if steps == 0:
        raise ValueError("the episode has no steps (action has 0 rows)")
    for key, extra in _PER_STEP.items():
        if key in arrays and (arrays[key].ndim == 0 or arrays[key].shape[0] != steps + extra):
            raise ValueError(f"{key} has shape {arrays[key].shape}, not {steps + extra} rows for the {steps} steps of action")
    for key in _IMAGES:
        if key in arrays and (arrays[key].ndim != 4 or arrays[key].shape[-1] != 3 or arrays[key].dtype != np.uint8):
            raise ValueError(f"{key} has shape {arrays[key].shape} dtype {arrays[key].dtype}, expected (T+1, H, W, 3) uint8")
    if "wrist_pixels" in arrays and arrays["wrist_pixels"].shape[1:] != (4,):
        raise ValueError(f"wrist_pixels has shape {arrays['wrist_pixels'].shape}, expected (T+1, 4)")
    for key in ("achieved_goal", "desired_goal"):
        if arrays[key].shape[1] != 3:
            raise ValueError(f"{key} has shape {arrays[key].shape}, expected (T+1, 3)")
    if arrays["dr_names"].dtype.kind != "U" or arrays["dr_names"].shape != arrays["dr_values"].shape:
        raise ValueError("dr_names must be strings, one per dr_values entry")
    for key, value in arrays.items():
        if value.dtype.kind not in "biufcU":
            raise ValueError(f"{key} has dtype {value.dtype}, expected a numeric or string array")
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise ValueError(f"{key} holds {int(np.size(value) - np.isfinite(value).sum())} non-finite values (NaN/inf)")


def iter_demos(path: str | Path, env_id: str | None = None, images_in_memory: bool = True) -> Iterator[Episode]:
    """Episodes of a demo folder in order, loaded one at a time and checked. With ``env_id``, demonstrations
    recorded in another env (task or robot) are refused, naming both. ``images_in_memory``: see
    :func:`read_episode`."""
    meta = read_meta(path)
    if env_id is not None and meta["env_id"] != env_id:
        raise BadFile(Path(path) / "meta.json", f"the demonstrations were recorded in {meta['env_id']}, this "
                      f"run trains {env_id}", f"demonstrations of {env_id} (same task and robot)")  # fmt: skip
    for name in meta["files"]:
        yield read_episode(Path(path) / name, images_in_memory)


def load_demos(path: str | Path, env_id: str | None = None, images_in_memory: bool = True) -> list[Episode]:
    """Every episode of a demo folder (see :func:`iter_demos`)."""
    return list(iter_demos(path, env_id, images_in_memory))


def check_fits(episodes: list[Episode], spaces: dict[str, Any], action_dim: int) -> None:
    """Each episode carries every observation key of the env with the env's shapes, and its actions."""
    for ep in episodes:
        where = ep.source or "a demonstration"
        expected = f"demonstrations of this env: observations {sorted(spaces)}, actions of size {action_dim}"
        if ep.arrays["action"].shape[1] != action_dim:
            raise BadFile(where, f"action has {ep.arrays['action'].shape[1]} columns", expected)
        for key, space in spaces.items():
            if key not in ep.arrays:
                hint = " (recorded without the wrist camera: `demos collect --wrist-camera`, or --replay the folder)" if key == "wrist_camera" else ""
                raise BadFile(where, f"the observation {key!r} is missing{hint}", expected)
            shape = ep.arrays[key].shape if key == "instruction" else ep.arrays[key].shape[1:]
            if tuple(shape) != tuple(space.shape):
                raise BadFile(where, f"{key} has per-step shape {tuple(shape)}, the env's is {space.shape}", expected)
