"""Behaviour cloning of the robot tasks through the core Trainer, from scripted-expert demonstrations.

The entry point takes an :class:`~ast_robot.config.ExperimentConfig` and writes into ``<run_root>/<name>/``
(:mod:`ast_robot.run_layout`): the policy under ``policy/`` (loadable by ``PolicyBase.load`` and the
deployment loader) with its deployment contract (:mod:`ast_robot.robot.contract`) in the checkpoint's state,
then an evaluation under randomization whose episode records go to ``eval/``.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ast_robot.core.data import Batch
from ast_robot.core.trainer import LossOutput
from ast_robot.run_layout import POLICY_DIR
from ast_robot.trainers import TRAINERS, colour_aug, feedback
from ast_robot.trainers.common import contract_of, evaluate_run
from ast_robot.trainers.feedback import DEFAULT_CAP, DEFAULT_MIX

PHYSICAL_KEY = "_physical"  # per-row loss weight from real-robot feedback (mean 1), carried beside the observations


# ----------------------------------------------------------------------------------------- BC data
class DemoData:
    """Demonstration steps as a dataset: inputs are dicts of observation tensors, targets the actions."""

    def __init__(self, obs: dict[str, np.ndarray], actions: np.ndarray, physical: np.ndarray | None = None,
                 cast_done: dict[str, torch.Tensor] | None = None) -> None:  # fmt: skip
        if len(actions) == 0:
            raise ValueError("no demonstration steps: the demonstrations are empty")
        self.obs = {k: torch.as_tensor(v) for k, v in obs.items()}
        self.actions = torch.as_tensor(actions, dtype=torch.float32)
        self.physical = None if physical is None else torch.as_tensor(physical, dtype=torch.float32)
        # colour-cast augmentation (colour_aug): the range (0: off) and, per camera key, the rows recorded under a cast
        self.cast_limit = 0.0
        self.cast_done = dict(cast_done or {})
        self.demo_rows = len(actions)  # rows 0 .. demo_rows - 1 are demonstration steps, the rest scenes (if any)

    @classmethod
    def from_episodes(cls, episodes: list[Any], keys: list[str], only_success: bool = True,
                      physical_weight: Any = None, aux: bool = False, scenes: dict[str, np.ndarray] | None = None,
                      scenes_cast: bool = False, images_dir: str | Path | None = None,
                      feedback_mix: float = DEFAULT_MIX, feedback_cap: float = DEFAULT_CAP) -> DemoData:  # fmt: skip
        """Step t of every (successful or DAgger-relabelled) episode: observation at t -> action at t.

        ``physical_weight`` (from the gap analyzer: a ``PhysicalWeights`` or any ``f(dr) -> [0, 1]``) scores each
        episode by how close its randomization values lie to where the real robot fails; the scores become the
        steps' loss weights, of mean 1 over the steps (:mod:`ast_robot.trainers.feedback`, ``feedback_mix`` and
        ``feedback_cap``). ``aux`` adds the privileged
        target positions (achieved + desired goal, ``AUX_KEY``) for the policy's auxiliary loss, and their
        image positions (``PIXEL_KEY``) when every episode records ``target_pixels``, and in the wrist camera's
        image (``WRIST_PIXEL_KEY``) when the keys hold ``wrist_camera`` and every episode records ``wrist_pixels``.
        ``scenes``: perception-only rows after the steps, as :meth:`with_scenes` adds them, built in the same
        arrays (camera images are filled in place, never held twice: ``demo_rows`` says where the steps end); with
        ``physical_weight`` they get the steps' mean weight (:func:`scene_physical_weight`).
        ``images_dir``: the camera images go to memory-mapped files there (``train.images_dir``), not to memory.
        """
        chosen = [e for e in episodes if e.success or not only_success or getattr(e, "relabelled", False)]
        if not chosen:
            raise ValueError(f"none of the {len(episodes)} demonstrations succeeded; nothing to clone")
        parts = _step_parts(chosen, keys, aux)
        if scenes is not None:
            _check_scenes(scenes, parts)
        obs = {k: _stack(chosen, part, None if scenes is None else scenes[k], images_dir) for k, part in parts.items()}
        actions = np.concatenate([ep.arrays["action"] for ep in chosen])
        weights = None
        if physical_weight is not None:
            log_raw = [_log_score(physical_weight, ep.dr) for ep in chosen]
            per_episode = feedback.loss_weights(log_raw, [len(ep) for ep in chosen], feedback_mix, feedback_cap)
            weights = np.concatenate([np.full(len(ep), w, np.float32) for ep, w in zip(chosen, per_episode)])
        done = colour_aug.cast_done_rows(chosen, keys)
        if scenes is None:
            return cls(obs, actions, weights, done)
        return _with_scene_rows(obs, actions, done, len(next(iter(scenes.values()))), scenes_cast, weights)

    def with_scenes(self, scenes: dict[str, np.ndarray], cast: bool = False) -> DemoData:
        """These steps plus perception-only rows (``ast_robot.envs.scenes``: no action, ``ACTION_WEIGHT_KEY`` 0);
        the scenes must carry every input key of these steps. ``cast``: the scenes were rendered under a colour
        cast (the augmentation leaves their images alone). The augmentation range is not carried over; physical
        weights are, the scenes getting the steps' mean (:func:`scene_physical_weight`)."""
        if self.demo_rows != len(self):
            raise ValueError(f"with_scenes: these data already hold {len(self) - self.demo_rows} scene rows after "
                             f"{self.demo_rows} steps; add every scene at once (from_episodes(scenes=...))")  # fmt: skip
        _check_scenes(scenes, self.obs)
        obs = {k: np.concatenate([v.numpy(), scenes[k].astype(v.numpy().dtype)]) for k, v in self.obs.items()}
        physical = None if self.physical is None else self.physical.numpy()
        return _with_scene_rows(obs, self.actions.numpy(), self.cast_done, len(next(iter(scenes.values()))), cast,
                                physical)  # fmt: skip

    def to(self, device: str | torch.device) -> DemoData:
        """These steps moved to ``device`` in place (``train.data_on_device``): observations, actions and physical
        weights; the cast flags stay with the sampler's indices on the host (they choose draws, not pixels)."""
        self.obs = {k: v.to(device) for k, v in self.obs.items()}
        self.actions = self.actions.to(device)
        self.physical = None if self.physical is None else self.physical.to(device)
        return self

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def get(self, indices: torch.Tensor) -> Batch:
        inputs = {k: v[indices] for k, v in self.obs.items()}
        if self.cast_limit > 0:  # per-row camera casts, drawn as the env draws them (off: no draw, images as stored)
            done = {k: v[indices] for k, v in self.cast_done.items()}
            inputs = colour_aug.augment(inputs, self.cast_limit, done)
        if self.physical is not None:
            inputs[PHYSICAL_KEY] = self.physical[indices]
        return Batch(inputs, self.actions[indices], indices.long())


def _log_score(physical_weight: Any, dr: dict[str, float]) -> float:
    """log of one episode's feedback score: ``log_weight(dr)`` of a ``PhysicalWeights`` (exact far from the centre,
    where the score underflows), else log of ``physical_weight(dr)``; NaN (unknown) for a non-finite score."""
    if hasattr(physical_weight, "log_weight"):
        return float(physical_weight.log_weight(dr))
    value = float(physical_weight(dr))
    if not np.isfinite(value):
        return float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"physical feedback: a score of {value!r} for draws {dict(list(dr.items())[:4])}...; the "
                         "analyzer's scores lie in [0, 1]")  # fmt: skip
    return float(np.log(value)) if value > 0 else float("-inf")


def _with_scene_rows(obs: dict[str, np.ndarray], actions: np.ndarray, done: dict[str, torch.Tensor], m: int,
                     cast: bool, physical: np.ndarray | None = None) -> DemoData:  # fmt: skip
    """DemoData of ``obs`` whose last ``m`` rows are scenes after the steps of ``actions`` (n, A): the scenes get
    ``ACTION_WEIGHT_KEY`` 0 (no action: perception only), zero actions, and count as rendered under a colour cast
    when ``cast`` (``done``: the steps' rows recorded under one). ``physical`` (n,): the steps' physical-feedback
    weights; the scenes get :func:`scene_physical_weight` of them."""
    from ast_robot.policies.policy import ACTION_WEIGHT_KEY

    n = len(actions)
    obs[ACTION_WEIGHT_KEY] = np.concatenate([np.ones(n, np.float32), np.zeros(m, np.float32)])
    padded = np.concatenate([actions, np.zeros((m, actions.shape[1]), np.float32)])
    done = {k: torch.cat([done.get(k, torch.zeros(n, dtype=torch.bool)), torch.full((m,), cast)])
            for k in colour_aug.CAST_PREFIX if k in obs}  # fmt: skip
    if physical is not None:
        physical = np.concatenate([physical, np.full(m, scene_physical_weight(physical))]).astype(np.float32)
    data = DemoData(obs, padded, physical, cast_done=done)
    data.demo_rows = n
    return data


def scene_physical_weight(steps: np.ndarray) -> float:
    """The physical-feedback loss weight of a scene row: the mean of the demonstration steps' ``steps`` (n,),
    which is 1 for the loss weights :mod:`ast_robot.trainers.feedback` builds.

    The weights score a demonstration by its randomization draws near the real failures; a scene has no action
    and its draws are not stored, so nothing places it near or far from them: it keeps the loss weight it has
    without feedback, and the feedback moves loss among the steps, not from steps to scenes (session 11 measured
    the gate-side version of this choice: bench/results/sim2real_pixels_physical_scenes.md)."""
    return float(np.mean(steps, dtype=np.float64)) if len(steps) else 0.0


def _step_parts(chosen: list[Any], keys: list[str], aux: bool) -> dict[str, Any]:
    """Per input key, ``part(episode) -> (steps, ...)`` array: the rows :meth:`DemoData.from_episodes` stacks."""
    parts: dict[str, Any] = {}
    for k in keys:
        if k == "instruction":
            parts[k] = lambda e: np.repeat(e.arrays["instruction"][None], len(e), 0)
        else:
            parts[k] = lambda e, k=k: e.arrays[k][: len(e)]
    if aux:
        from ast_robot.policies.policy import AUX_KEY, PIXEL_KEY

        parts[AUX_KEY] = lambda e: np.concatenate([e.arrays["achieved_goal"][: len(e)],
                                                   e.arrays["desired_goal"][: len(e)]], -1)  # fmt: skip
        if all("target_pixels" in e.arrays for e in chosen):  # image positions of the same (two_stage)
            parts[PIXEL_KEY] = lambda e: e.arrays["target_pixels"][: len(e)]
        if "wrist_camera" in keys and all("wrist_pixels" in e.arrays for e in chosen):  # in the wrist image
            from ast_robot.policies.policy import WRIST_PIXEL_KEY

            parts[WRIST_PIXEL_KEY] = lambda e: e.arrays["wrist_pixels"][: len(e)].astype(np.float32)
    return parts


def _stack(chosen: list[Any], part: Any, tail: np.ndarray | None, images_dir: str | Path | None = None) -> np.ndarray:
    """``part`` of every episode, then ``tail`` (scenes) in that dtype, as one array. Images (uint8, checked per
    file) are filled into one allocation: a list of per-episode copies and their concatenation held the pool's
    images twice (a pixel training on 700-1000 episodes took 11-12 GB in session 8). Other keys concatenate as before
    (their dtype is the episodes' common one). ``images_dir``: images into a memory-mapped file there."""
    first = part(chosen[0])
    if first.dtype != np.uint8 or first.ndim != 4:
        head = np.concatenate([part(e) for e in chosen])
        return head if tail is None else np.concatenate([head, tail.astype(head.dtype)])
    rows = sum(len(e) for e in chosen)
    out = _image_buffer((rows + (0 if tail is None else len(tail)), *first.shape[1:]), images_dir)
    at = 0
    for e in chosen:
        block = first if at == 0 else part(e)
        out[at: at + len(block)] = block
        at += len(block)
    if tail is not None:
        out[at:] = tail
    return out


def _image_buffer(shape: tuple[int, ...], images_dir: str | Path | None) -> np.ndarray:
    """An uninitialised uint8 array: in memory, or a memory-mapped file in ``images_dir`` unlinked at once (the
    mapping keeps it; nothing is left behind when the process ends, however it ends)."""
    if not images_dir:
        return np.empty(shape, np.uint8)
    import tempfile

    folder = Path(images_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix="images-", suffix=".u8") as fh:
        return np.memmap(fh.name, np.uint8, mode="w+", shape=shape)  # the file goes at the with's end; the map stays


def _check_scenes(scenes: dict[str, np.ndarray], inputs: Any) -> None:
    """Scenes carry every input key of the steps (ValueError naming the missing keys otherwise)."""
    missing = sorted(set(inputs) - set(scenes))
    if missing:
        raise ValueError(f"train.scenes: scenes lack {missing}, input keys of the steps; render them for this "
                         "env's observation (camera size, wrist camera, instruction)")  # fmt: skip


def collect_episodes(env: Any, n: int, seed: int, noise: float = 0.0) -> list[Any]:
    """``n`` scripted-expert episodes in memory (seeds ``seed, seed+1, ...``); ``noise``: see ``run_episode``."""
    from ast_robot.envs.demos import Episode, run_episode
    from ast_robot.envs.experts import expert_for

    expert = expert_for(env)
    return [Episode(run_episode(env, expert, seed + i, noise=noise)) for i in range(n)]


def bc_loss(model: Any, batch: Batch) -> LossOutput:
    """Per-sample BC loss; the pooled features double as the novelty embedding (one forward).

    Goes through ``model(...)`` (not ``model.embed``) so a DDP-wrapped policy works and syncs gradients.
    Scene rows (no action) are group 1 of the loss score (``significance.loss_groups: 2`` ranks them apart).

    Physical feedback (``PHYSICAL_KEY``, mean 1 over the steps) multiplies each row's loss: the objective itself
    changes, gated or not. It is not passed to the gate's ``physical`` component as well: a gated run's loss
    score already sees the weighted losses, and a second physical score would count the feedback twice (with the
    gate's 1/p importance weights that second path changed only which rows got a backward, not what was learnt)."""
    from ast_robot.policies.policy import ACTION_WEIGHT_KEY

    obs = {k: v for k, v in batch.inputs.items() if k != PHYSICAL_KEY}
    losses, h = model({**obs, "action": batch.targets}, per_sample=True)  # (B,), (B, F)
    weight = batch.inputs.get(PHYSICAL_KEY)
    if weight is not None:
        losses = losses * weight.to(losses.dtype)  # (B,)
    groups = None
    if ACTION_WEIGHT_KEY in obs:  # scene rows: perception loss only, another scale than demo rows
        groups = (obs[ACTION_WEIGHT_KEY] <= 0).long()
    return LossOutput(losses=losses, embeddings=h, groups=groups)


# ----------------------------------------------------------------------------------------- BC
@TRAINERS.register("bc")
def train_bc(cfg: Any, resume: str | None = None, init_from: str | Path | None = None,
             physical_weight: Any = None, show_progress: bool = True,
             demo_pool: list[Any] | None = None, scene_pool: str | Path | None = None) -> dict[str, float]:  # fmt: skip
    """Behaviour cloning of the configured policy from scripted-expert demonstrations.

    ``init_from`` fine-tunes a policy checkpoint (with ``train.finetune_steps`` and ``finetune_demos`` when
    set: the loop's later rounds adapt a trained policy, they need not learn the task again);
    ``physical_weight`` (real-robot feedback from the gap analyzer) weights each demonstration's loss
    (``train.feedback_mix``, ``train.feedback_cap``: :mod:`ast_robot.trainers.feedback`). ``demo_pool``: demonstrations of earlier rounds, trained on beside this
    round's new ones, which are appended to it (the loop keeps one pool: a fine-tune round adds a few demos
    from the retuned randomization and still sees the earlier ones, so it does not forget them). The metrics
    carry each stage's wall time (demos, training, evaluation). ``scene_pool``: a scenes file
    (:mod:`ast_robot.envs.scenes`) trained on as it is, in place of ``train.scenes``: a fine-tune's replay of the
    scenes its start policy learnt from, like the demo pool (checked against this env's inputs, not against this
    run's randomization or seed: they are old data, which a retune must not throw away).
    """
    from ast_robot.core.assemble import build_trainer
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import load_demos
    from ast_robot.policies.policy import build_policy

    t0 = time.perf_counter()
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    keys = list(env.observation_space.spaces)
    if cfg.train.demos:
        from ast_robot.envs.demos import check_fits

        episodes = load_demos(cfg.train.demos, env_id=cfg.env.id)  # checked: keys, shapes, finite values
        check_fits(episodes, dict(env.observation_space.spaces), int(env.action_space.shape[0]))
    else:
        n_demos = _budget(cfg.train.n_demos, cfg.train.finetune_demos, init_from)
        first = cfg.seed + 1_000_000 + len(demo_pool or ())  # a pool's next demos are new tables, not repeats
        episodes = collect_episodes(env, n_demos, seed=first, noise=cfg.train.demo_noise)
    if demo_pool is not None:
        demo_pool.extend(episodes)
        episodes = list(demo_pool)
    torch.manual_seed(cfg.seed)
    policy = build_policy(cfg.policy, env.observation_space, int(env.action_space.shape[0]))
    scenes, cast = _scenes(cfg, env, scene_pool)
    data = DemoData.from_episodes(episodes, keys, physical_weight=physical_weight, aux=cfg.policy.aux_weight > 0,
                                  scenes=scenes, scenes_cast=cast, images_dir=cfg.train.images_dir,
                                  feedback_mix=cfg.train.feedback_mix, feedback_cap=cfg.train.feedback_cap)  # fmt: skip
    del scenes  # copied into data
    demos_wall_s = time.perf_counter() - t0
    if init_from is not None:
        from ast_robot.core.checkpoint import POLICY_EXPECTED, load_module_state
        from ast_robot.fileio import reading
        from ast_robot.policies.policy import PolicyBase

        with reading(init_from, f"{POLICY_EXPECTED}, of the configured network"):
            load_module_state(policy, PolicyBase.load(init_from).state_dict(), "policy")
    else:  # the demonstration steps only: scenes are posed still, demos move; its keys only (not the aux targets)
        policy.normalizer.fit({k: v[: data.demo_rows] for k, v in data.obs.items()})
    steps = _budget(cfg.train.steps, cfg.train.finetune_steps, init_from)
    data.cast_limit = colour_aug.casts_drawn(cfg.randomization)  # the cast the env draws, on every stored image
    trainer = build_trainer(cfg, policy, bc_loss, data, steps=steps, show_progress=show_progress,
                            resume=resume)  # a failed resume writes nothing into the run folder  # fmt: skip
    if cfg.train.data_on_device:
        data.to(trainer.device)
    start = time.perf_counter()
    counters = trainer.fit()
    run_dir = Path(cfg.run_root) / cfg.name
    save_policy(policy, run_dir / POLICY_DIR, trainer.step, cfg, contract_of(env))
    metrics = {**counters.summary(), "train_wall_s": time.perf_counter() - start, "demo_steps": len(data),
               "demos": len(episodes), "demos_wall_s": demos_wall_s}  # fmt: skip
    # the trainer and its data sit in a reference cycle: without a collection the data (GBs of images for a pixel
    # pool) outlived this call, and the loop's next round built its own beside it (9.3 GB in round 2 of the UR5e
    # pool loop, 5.1 in round 1)
    del trainer, data
    gc.collect()
    start = time.perf_counter()
    metrics.update(evaluate_run(cfg, run_dir, policy.act, episodes=cfg.train.eval_episodes, env=env))
    metrics["eval_wall_s"] = time.perf_counter() - start
    env.close()
    return metrics


def _budget(full: int, finetune: int, init_from: object) -> int:
    """A fine-tune's (``init_from`` set) own number of steps or demos when configured (> 0), else the full run's."""
    return finetune if init_from is not None and finetune else full


def _add_scenes(cfg: Any, env: Any, data: DemoData) -> DemoData:
    """``train.scenes`` single-render scenes of the training env added to ``data`` (perception-only rows)."""
    scenes, cast = _scenes(cfg, env, None)
    return data if scenes is None else data.with_scenes(scenes, cast)


def _scenes(cfg: Any, env: Any, pool: str | Path | None) -> tuple[dict[str, np.ndarray] | None, bool]:
    """The run's perception-only rows and whether they were rendered under a colour cast: the scene pool's
    (``pool``: a scenes file, as it is), else ``train.scenes`` of the training env (None: no scenes)."""
    count = cfg.train.scenes or (pool is not None)
    if count and cfg.policy.type != "two_stage":
        raise ValueError(f"train.scenes: {cfg.train.scenes} needs policy.type 'two_stage' (got {cfg.policy.type!r}): "
                         "scenes carry no action, only the perception's targets")  # fmt: skip
    if pool is not None:
        return read_scene_pool(pool, cfg.env.id, dict(env.observation_space.spaces))
    if not cfg.train.scenes:
        return None, False
    from ast_robot.envs.scenes import make_scenes

    seed = cfg.seed + 5_000_000
    if cfg.train.scenes_file:
        return _cached_scenes(cfg, env, seed)
    cast = colour_aug.casts_drawn(cfg.randomization) > 0  # this env renders them under its cast
    return make_scenes(env, cfg.train.scenes, seed=seed), cast


def read_scene_pool(path: str | Path, env_id: str, spaces: dict[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
    """A scenes file's scenes and whether they were rendered under a colour cast, checked against the env
    (``env_id``, its observation ``spaces``); ValueError naming the file when they do not fit it."""
    from ast_robot.envs.scenes import read_scenes, scenes_meta

    meta = scenes_meta(path)
    theirs = meta.get("env", {}).get("id")
    if theirs != env_id:
        raise ValueError(f"scene pool {path}: rendered in {theirs}, this run trains {env_id}; give scenes of the same env")
    scenes = read_scenes(path)
    for key, space in spaces.items():
        got = tuple(scenes[key].shape[1:]) if key in scenes else None
        if got != tuple(space.shape):
            raise ValueError(f"scene pool {path}: {key} has per-scene shape {got}, this env's is {space.shape}; give "
                             f"scenes rendered for this env's observation (camera size, wrist camera)")  # fmt: skip
    return scenes, _meta_cast(meta) > 0


def _cached_scenes(cfg: Any, env: Any, seed: int) -> tuple[dict[str, np.ndarray], bool]:
    """``train.scenes_file``'s scenes and whether they were rendered under a colour cast; rendered and written
    first when the file is missing; refused (naming the field) when rendered for another env, randomization,
    count or seed: the cache must not change what trains. The colour-cast range alone may differ: the trainer
    casts uncast rows at batch time (colour_aug), so scenes rendered without it serve a run with it."""
    import json

    from ast_robot.config import to_dict
    from ast_robot.envs.scenes import make_scenes, read_scenes, scenes_meta, write_scenes

    path = Path(cfg.train.scenes_file)
    want = json.loads(json.dumps({"env": to_dict(cfg.env), "randomization": to_dict(cfg.randomization),
                                  "n": cfg.train.scenes, "seed": seed}))  # fmt: skip  (JSON's types, as stored)
    want["env"].pop("max_episode_steps", None)  # a scene is one render: the episode's length does not enter it
    if not path.is_file():
        write_scenes(path, make_scenes(env, cfg.train.scenes, seed=seed), want)
    have = scenes_meta(path)
    cast = _meta_cast(have)
    have, want = _without_cast(have), _without_cast(want)
    for key, value in want.items():
        if have.get(key) != value:
            raise ValueError(f"train.scenes_file: {path} holds scenes of another run ({key} differs: {str(have.get(key))[:120]} "
                             f"vs this run's {str(value)[:120]}); give another path or delete it to re-render")  # fmt: skip
    return read_scenes(path), cast > 0


def _meta_cast(meta: dict[str, Any]) -> float:
    """The colour-cast range the scenes of ``meta`` were rendered under (0: none; as colour_aug.casts_drawn)."""
    rand = meta.get("randomization", {})
    visual = rand.get("visual", {})
    return float(visual.get("colour_shift", 0.0)) if rand.get("enabled") and visual.get("enabled") else 0.0


def _without_cast(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` (scenes file) without ``randomization.visual.colour_shift`` (a copy)."""
    visual = {k: v for k, v in meta.get("randomization", {}).get("visual", {}).items() if k != "colour_shift"}
    if "randomization" not in meta:
        return meta
    return {**meta, "randomization": {**meta["randomization"], "visual": visual}}


def save_policy(policy: Any, path: Path, step: int, cfg: Any, contract: Any) -> Path:
    """The policy checkpoint with the whole experiment config and the deployment contract
    (:mod:`ast_robot.robot.contract`, in the state under ``"contract"``: the deployment is built from it)."""
    from ast_robot.config import dump_config
    from ast_robot.core.checkpoint import save_checkpoint
    from ast_robot.robot.contract import STATE_KEY

    state = {**policy.checkpoint_state(), STATE_KEY: contract.to_dict()}
    return save_checkpoint(path, step, state, dump_config(cfg))


