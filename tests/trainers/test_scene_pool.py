"""The loop's fine-tune keeps what the student learnt from (issue 21): a scene pool (the start policy's own scenes
file) is replayed as it is, whatever the retuned randomization or the round's seed, and a pixel demo pool keeps its
camera images in their files, the training data built in one allocation (the 700-episode pool peaked near 12 GB)."""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.config import load_config
from ast_robot.envs import make_env
from ast_robot.envs.demos import Episode, load_demos, write_episode, write_meta
from ast_robot.trainers import bc
from ast_robot.trainers.bc import DemoData

CONFIG = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
SMALL = ["env.camera_size=[32,32]", "env.wrist_camera=true", "env.wrist_camera_size=[32,32]", "train.scenes=3",
         "seed=0"]  # fmt: skip


def _episode(rng: np.random.Generator, steps: int, cast: bool = False) -> Episode:
    """A synthetic pixel demonstration (the loader's format): random images, one cast flag in its draws."""
    names = ["visual_colour_shift_r", "visual_colour_shift_g", "visual_colour_shift_b"] if cast else ["friction"]
    return Episode({"observation": rng.normal(size=(steps + 1, 5)), "camera": rng.integers(0, 256, (steps + 1, 16, 16, 3), np.uint8),
                    "wrist_camera": rng.integers(0, 256, (steps + 1, 16, 16, 3), np.uint8),
                    "instruction": rng.integers(0, 256, 8, np.uint8), "action": rng.normal(size=(steps, 2)).astype(np.float32),
                    "achieved_goal": rng.normal(size=(steps + 1, 3)), "desired_goal": rng.normal(size=(steps + 1, 3)),
                    "target_pixels": rng.normal(size=(steps + 1, 6)), "wrist_pixels": rng.normal(size=(steps + 1, 4)),
                    "success": np.asarray(True), "dr_names": np.asarray(names), "dr_values": np.zeros(len(names))})  # fmt: skip


def _scenes_like(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    from ast_robot.policies.policy import AUX_KEY, PIXEL_KEY, WRIST_PIXEL_KEY

    return {"observation": rng.normal(size=(m, 5)).astype(np.float32), "instruction": rng.integers(0, 256, (m, 8), np.uint8),
            "camera": rng.integers(0, 256, (m, 16, 16, 3), np.uint8), "wrist_camera": rng.integers(0, 256, (m, 16, 16, 3), np.uint8),
            AUX_KEY: rng.normal(size=(m, 6)).astype(np.float32), PIXEL_KEY: rng.normal(size=(m, 6)).astype(np.float32),
            WRIST_PIXEL_KEY: rng.normal(size=(m, 4)).astype(np.float32)}  # fmt: skip


def _same(a: DemoData, b: DemoData) -> None:
    assert set(a.obs) == set(b.obs) and a.demo_rows == b.demo_rows
    for key in a.obs:
        assert a.obs[key].dtype == b.obs[key].dtype and torch.equal(a.obs[key], b.obs[key]), key
    assert torch.equal(a.actions, b.actions)
    assert set(a.cast_done) == set(b.cast_done) and all(torch.equal(a.cast_done[k], b.cast_done[k]) for k in a.cast_done)


def test_scenes_built_in_with_the_steps_give_what_adding_them_after_gave():
    rng = np.random.default_rng(0)
    episodes = [_episode(rng, 3), _episode(rng, 5, cast=True), _episode(rng, 2)]
    keys = ["observation", "camera", "wrist_camera", "instruction"]
    scenes = _scenes_like(rng, 4)
    before = DemoData.from_episodes(episodes, keys, aux=True).with_scenes(scenes, cast=True)
    now = DemoData.from_episodes(episodes, keys, aux=True, scenes=scenes, scenes_cast=True)
    _same(now, before)
    assert now.demo_rows == 10 and len(now) == 14
    _same(DemoData.from_episodes(episodes, keys, aux=True), DemoData.from_episodes(episodes, keys, aux=True, scenes=None))
    with pytest.raises(ValueError, match=r"train.scenes: scenes lack \['camera'\]"):  # one missing key: refused as before
        DemoData.from_episodes(episodes, keys, scenes={k: v for k, v in scenes.items() if k != "camera"})


def test_a_pool_loaded_with_its_images_on_disk_trains_on_the_same_data_and_holds_no_image(tmp_path):
    rng = np.random.default_rng(1)
    episodes = [_episode(rng, 40), _episode(rng, 30, cast=True)]
    for i, ep in enumerate(episodes):
        write_episode(tmp_path / f"ep{i}.npz", dict(ep.arrays))
    write_meta(tmp_path, {"env_id": "ast_robot/PickPlaceUR5e-v0", "files": ["ep0.npz", "ep1.npz"]})
    held, on_disk = load_demos(tmp_path), load_demos(tmp_path, images_in_memory=False)
    keys = ["observation", "camera", "wrist_camera", "instruction"]
    _same(DemoData.from_episodes(on_disk, keys, aux=True), DemoData.from_episodes(held, keys, aux=True))
    images = sum(ep.arrays[k].nbytes for ep in held for k in ("camera", "wrist_camera"))
    assert "camera" in on_disk[0].arrays and set(on_disk[0].arrays) == set(held[0].arrays)
    assert sum(len(pickle.dumps(ep.arrays)) for ep in on_disk) < images / 2  # null case below: the images held
    assert sum(len(pickle.dumps(ep.arrays)) for ep in held) > images


def _write_scenes(path: Path, *overrides: str) -> None:
    cfg = load_config(CONFIG, [*SMALL, f"train.scenes_file={path}", *overrides])
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed)
    try:
        bc._cached_scenes(cfg, env, cfg.seed + 5_000_000)  # renders and writes the file
    finally:
        env.close()


def test_a_scene_pool_is_replayed_as_it_is_where_the_run_s_own_scenes_file_would_be_refused(tmp_path):
    path = tmp_path / "scenes.npz"
    _write_scenes(path)
    stored = dict(np.load(path))
    # a later round: its own seed, a retuned light range, no scenes of its own
    retuned = load_config(CONFIG, [*SMALL, "seed=1", "train.scenes=0", "randomization.visual.light_intensity=[0.2,1.25]"])
    env = make_env(retuned.env, retuned.randomization, seed=retuned.seed)
    try:
        scenes, cast = bc._scenes(retuned, env, path)
        assert not cast and set(scenes) == set(stored) - {"meta"}
        assert all(np.array_equal(scenes[k], stored[k]) for k in scenes)
        assert bc._scenes(retuned, env, None) == (None, False)  # null case: no pool, no train.scenes: no scenes
        own = dataclasses.replace(retuned, train=dataclasses.replace(retuned.train, scenes=3, scenes_file=str(path)))
        with pytest.raises(ValueError, match=r"holds scenes of another run \(randomization differs"):
            bc._scenes(own, env, None)  # the cache's check stands for the run's own scenes
    finally:
        env.close()


def test_a_scene_pool_of_another_image_size_is_refused_before_the_loop_runs(tmp_path, monkeypatch):
    from ast_robot import sim2real as loop

    path = tmp_path / "scenes24.npz"
    _write_scenes(path, "env.camera_size=[24,24]")
    cfg = load_config(CONFIG, SMALL)
    with pytest.raises(ValueError, match=r"^scene pool .*scenes24.npz: camera has per-scene shape \(24, 24, 3\), "
                                         r"this env's is \(32, 32, 3\)") as err:  # fmt: skip
        loop.check_scene_pool(path, cfg)
    assert "\n" not in str(err.value)

    def no_round(*_a, **_k):
        raise AssertionError("a round ran although the scene pool does not fit")

    monkeypatch.setattr(loop, "run_round", no_round)
    args = types.SimpleNamespace(overrides=SMALL, out=str(tmp_path / "loop"), rounds=1, scenes_pool=str(path),
                                 physical_feedback=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"^scene pool "):
        loop.sim2real(CONFIG, args, console=None)
    # with the physical-feedback weights (the default) a fitting pool is no longer refused: the scene rows weigh as
    # the mean demonstration step (tests/trainers/test_scene_physical.py); the loop goes on to its first round
    _write_scenes(tmp_path / "scenes.npz")
    args.physical_feedback, args.scenes_pool = True, str(tmp_path / "scenes.npz")
    with pytest.raises(AssertionError, match="a round ran"):
        loop.sim2real(CONFIG, args, console=types.SimpleNamespace(print=lambda *_: None, rule=lambda *_: None))


def _anon_kb() -> int:
    """This process's anonymous resident memory (kB): what a memory-mapped file's pages do not count in. Freed heap
    memory is handed back to the system first (malloc_trim): otherwise a new array may reuse pages an earlier step
    freed and not grow the count at all (the held copy's null case read half its images once, an allocation
    history that changed with unrelated imports)."""
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("RssAnon:")))


def test_images_in_a_memory_mapped_file_train_on_the_same_data_outside_the_process_s_memory(tmp_path):
    rng = np.random.default_rng(2)
    big = []
    for i in range(12):  # ~60 MB of 96x96 images, read back from their files (the pool's way)
        ep = _episode(rng, 60)
        arrays = dict(ep.arrays)
        arrays["camera"] = rng.integers(0, 256, (61, 96, 96, 3), np.uint8)
        arrays["wrist_camera"] = rng.integers(0, 256, (61, 96, 96, 3), np.uint8)
        write_episode(tmp_path / f"ep{i}.npz", arrays)
        big.append(f"ep{i}.npz")
    write_meta(tmp_path, {"env_id": "ast_robot/PickPlaceUR5e-v0", "files": big})
    pool = load_demos(tmp_path, images_in_memory=False)
    keys = ["observation", "camera", "wrist_camera", "instruction"]
    images_kb = 12 * 61 * 96 * 96 * 3 * 2 // 1024
    spill = tmp_path / "spill"
    before = _anon_kb()
    mapped = DemoData.from_episodes(pool, keys, aux=True, images_dir=spill)
    grew_mapped = _anon_kb() - before
    before = _anon_kb()
    held = DemoData.from_episodes(pool, keys, aux=True)  # null case of the instrument: the images in memory
    grew_held = _anon_kb() - before
    _same(mapped, held)
    assert list(spill.iterdir()) == []  # unlinked once mapped: nothing left behind
    assert grew_held > 0.9 * images_kb and grew_mapped < 0.25 * images_kb, (grew_held, grew_mapped, images_kb)


def test_a_training_s_data_is_gone_when_it_returns(tmp_path, monkeypatch):
    """The loop trains round after round in one process: a round's data (GBs of images) must not outlive it (a
    reference cycle through the trainer kept it until a collection: the next round's data was built beside it)."""
    import weakref

    built = []
    make = DemoData.from_episodes.__func__

    def spy(cls, *args, **kwargs):
        data = make(cls, *args, **kwargs)
        built.append(weakref.ref(data))
        return data

    monkeypatch.setattr(DemoData, "from_episodes", classmethod(spy))
    cfg = load_config(CONFIG, ["env.camera_size=[32,32]", "train.n_demos=1", "train.steps=2", "train.eval_episodes=1",
                               "train.scenes=0", "policy.hidden_sizes=[32]"])  # fmt: skip
    bc.train_bc(dataclasses.replace(cfg, name="gone", run_root=str(tmp_path)), show_progress=False)
    assert len(built) == 1 and built[0]() is None  # collected by the time train_bc returned
