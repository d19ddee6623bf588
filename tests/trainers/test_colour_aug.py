"""The colour cast as a BC training augmentation (issues 21/20): off = the stored batch without a single draw;
on = every camera image of every row cast by its own draw within the range, with the env's pixel operation;
rows recorded under a cast left alone; a resumed run draws what the uninterrupted one drew."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.config import from_dict
from ast_robot.config.gate import SignificanceConfig
from ast_robot.config.train import TrainConfig
from ast_robot.core.significance import SignificanceModel
from ast_robot.core.trainer import LossOutput, Trainer
from ast_robot.envs import visual_randomization as vr
from ast_robot.trainers import colour_aug
from ast_robot.trainers.bc import DemoData

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
LIMIT = 0.0706


def _data(n: int = 64, seed: int = 0) -> DemoData:
    g = np.random.default_rng(seed)
    obs = {"observation": g.normal(size=(n, 5)).astype(np.float32),
           "camera": g.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8),
           "wrist_camera": g.integers(0, 256, size=(n, 10, 10, 3), dtype=np.uint8)}  # fmt: skip
    return DemoData(obs, g.normal(size=(n, 4)).astype(np.float32))


def test_off_gives_the_stored_batch_and_draws_nothing():
    data, idx = _data(), torch.tensor([3, 0, 17, 17, 40])
    before = torch.get_rng_state()
    batch = data.get(idx)  # cast_limit 0: the default
    assert torch.equal(torch.get_rng_state(), before)
    for key, value in data.obs.items():
        assert torch.equal(batch.inputs[key], value[idx])


def test_on_casts_each_row_and_camera_by_its_own_draw_with_the_env_arithmetic():
    data, idx = _data(), torch.arange(0, 64, 3)
    stored = {k: v.clone() for k, v in data.obs.items()}
    data.cast_limit = LIMIT
    torch.manual_seed(7)
    batch = data.get(idx)
    torch.manual_seed(7)  # the same draws, in the augmentation's order: scene camera, then wrist
    scene, wrist = colour_aug.draw_casts(len(idx), LIMIT), colour_aug.draw_casts(len(idx), LIMIT)
    assert scene.abs().max() <= LIMIT and wrist.abs().max() <= LIMIT
    assert not torch.equal(scene, wrist) and len(set(scene[:, 0].tolist())) == len(idx)  # per row, per camera
    for key, shifts in (("camera", scene), ("wrist_camera", wrist)):
        for row, i in enumerate(idx.tolist()):
            want = vr.colour_cast(data.obs[key][i].numpy(), shifts[row].numpy())
            np.testing.assert_array_equal(batch.inputs[key][row].numpy(), want)
    assert torch.equal(batch.inputs["observation"], data.obs["observation"][idx])  # not an image: untouched
    assert all(torch.equal(stored[k], data.obs[k]) for k in stored)  # the stored images stay as stored


def test_a_grey_image_moves_by_a_constant_within_the_range_per_channel():
    n = 200
    obs = {"camera": np.full((n, 4, 4, 3), 128, np.uint8), "wrist_camera": np.full((n, 4, 4, 3), 128, np.uint8)}
    data = DemoData(obs, np.zeros((n, 2), np.float32))
    data.cast_limit = LIMIT
    torch.manual_seed(0)
    batch = data.get(torch.arange(n))
    for key in obs:
        diff = batch.inputs[key].int() - 128  # (n, 4, 4, 3)
        assert (diff == diff[:, :1, :1, :]).all()  # one cast per image and channel
        assert diff.abs().max() <= int(LIMIT * 255) and diff.float().std() > 5  # spread over the range
    corr = np.corrcoef(batch.inputs["camera"][:, 0, 0, 0].numpy(), batch.inputs["wrist_camera"][:, 0, 0, 0].numpy())
    assert abs(corr[0, 1]) < 0.3  # the cameras draw apart


class _Ep(SimpleNamespace):
    """An episode as colour_aug sees it: a length and its randomization draws."""

    def __init__(self, n: int, dr: dict[str, float]) -> None:
        super().__init__(n=n, dr=dr)

    def __len__(self) -> int:
        return self.n


def test_rows_recorded_under_a_cast_are_left_alone_and_scenes_carry_their_flag():
    episodes = [_Ep(3, {}), _Ep(2, {f"{vr.CAST}_r": 0.01, f"{vr.CAST}_g": 0.0, f"{vr.CAST}_b": 0.0})]
    done = colour_aug.cast_done_rows(episodes, ["camera", "wrist_camera"])
    assert done["camera"].tolist() == [False] * 3 + [True] * 2 and not done["wrist_camera"].any()
    data = _data(5)
    data = DemoData({k: v.numpy() for k, v in data.obs.items()}, data.actions.numpy(), cast_done=done)
    scenes = {k: v[:2].numpy() for k, v in data.obs.items()}
    with_scenes = data.with_scenes(scenes, cast=True)
    assert with_scenes.cast_done["camera"].tolist() == [False] * 3 + [True] * 4
    assert with_scenes.cast_done["wrist_camera"].tolist() == [False] * 5 + [True] * 2
    with_scenes.cast_limit = LIMIT
    batch = with_scenes.get(torch.arange(7))
    assert torch.equal(batch.inputs["camera"][3:], with_scenes.obs["camera"][3:])
    assert not torch.equal(batch.inputs["camera"][:3], with_scenes.obs["camera"][:3])
    assert torch.equal(batch.inputs["wrist_camera"][5:], with_scenes.obs["wrist_camera"][5:])


def test_casting_an_uncast_render_gives_the_env_s_render_under_that_cast():
    """Same seed, image noise off: the env without the cast, cast by the trainer's op with the cast the env drew
    on, is the env's own image under the cast (scene and wrist camera)."""
    config = {"observation": "deploy", "camera": True, "instruction": True, "n_objects": 2, "n_pads": 2,
              "wrist_camera": True, "camera_size": [32, 32], "wrist_camera_size": [32, 32]}  # fmt: skip
    make = lambda shift: gym.make("ast_robot/PickPlaceUR5e-v0", config=config, randomization={  # noqa: E731
        "preset": "default", "visual": {"enabled": True, "image_noise": [0.0, 0.0], "colour_shift": shift}})
    plain, cast = make(0.0), make(LIMIT)
    try:
        obs0, _ = plain.reset(seed=11)
        obs1, info = cast.reset(seed=11)
        for key, prefix in colour_aug.CAST_PREFIX.items():
            shift = torch.as_tensor(vr.shift_of(info["dr"], prefix))[None]  # (1, 3)
            assert shift.abs().max() > 0
            got = colour_aug.cast_images(torch.as_tensor(obs0[key])[None], shift)[0].numpy()
            np.testing.assert_array_equal(got, obs1[key])
    finally:
        plain.close(), cast.close()


class _Net(nn.Module):
    """Consumes both images, so the casts reach the gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(3, 4)

    def forward(self, inputs):
        scene = inputs["camera"].float().mean((1, 2)) / 255  # (B, 3)
        wrist = inputs["wrist_camera"].float().mean((1, 2)) / 255
        return self.a(scene) + self.b(wrist)  # (B, 4)


def _loss(model, batch):
    return LossOutput(((model(batch.inputs) - batch.targets) ** 2).mean(1))


def _trainer(limit: float, steps: int = 12, checkpoint_every: int = 0):
    torch.manual_seed(0)
    model, data = _Net(), _data()
    data.cast_limit = limit
    cfg = from_dict(TrainConfig, {"type": "bc", "steps": steps, "batch_size": 16, "lr": 1e-2,
                                  "checkpoint_every": checkpoint_every})  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    return Trainer(model, _loss, opt, data, cfg, significance=SignificanceModel(SignificanceConfig()), seed=0,
                   show_progress=False)  # fmt: skip


def _params(trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def test_a_resumed_run_with_the_cast_equals_the_uninterrupted_one(tmp_path):
    from ast_robot.config import ExperimentConfig
    from ast_robot.runlog import RunDir

    full = _trainer(LIMIT)
    full.fit()
    off = _trainer(0.0)
    off.fit()
    assert not torch.equal(_params(full), _params(off))  # ... the casts change what is learned
    first = _trainer(LIMIT, checkpoint_every=6)
    first.run = RunDir(ExperimentConfig(name="a"), root=tmp_path)
    first.fit(steps=6)  # writes the checkpoint at step 6
    torch.manual_seed(123)  # disturb the global generator: the resume must restore the casts' stream
    second = _trainer(LIMIT)
    assert second.resume(tmp_path / "a") == 6
    second.fit()
    assert torch.equal(_params(full), _params(second))
