"""train.data_on_device: the BC training set moved once to the training device (each step's batch gathered there,
not copied from host memory). No GPU here: the "meta" device stands in (a tensor there has shape and dtype, no
storage), so any tensor left behind on the host, or mixed with the host in a step, shows up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ast_robot.trainers import TRAINERS, colour_aug
from ast_robot.trainers.bc import DemoData
from tests.trainers.test_bc import reach_cfg

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _data(n: int = 32) -> DemoData:
    g = np.random.default_rng(0)
    obs = {"observation": g.normal(size=(n, 5)).astype(np.float32),
           "camera": g.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8)}  # fmt: skip
    return DemoData(obs, g.normal(size=(n, 4)).astype(np.float32), physical=np.linspace(0, 1, n))


def test_to_moves_every_input_action_and_weight_and_keeps_the_cast_flags_with_the_indices():
    data = _data()
    data.cast_done = {"camera": torch.zeros(len(data), dtype=torch.bool)}
    assert data.to("meta") is data
    assert {v.device.type for v in data.obs.values()} == {"meta"}
    assert data.actions.device.type == "meta" and data.physical.device.type == "meta"
    assert data.cast_done["camera"].device.type == "cpu"  # indexed by the sampler's host indices
    batch = data.get(torch.tensor([3, 0, 9]))  # host indices into device tensors, as the trainer's sampler gives
    assert batch.inputs["camera"].shape == (3, 12, 12, 3) and batch.inputs["camera"].device.type == "meta"
    assert batch.targets.shape == (3, 4) and batch.targets.device.type == "meta"


def test_the_colour_cast_follows_the_images_device():
    data = _data().to("meta")
    data.cast_limit = 0.07  # draws on the host generator (resume-exact), applied where the images are
    batch = data.get(torch.arange(8))
    assert batch.inputs["camera"].device.type == "meta" and batch.inputs["camera"].dtype == torch.uint8
    host = colour_aug.cast_images(_data().obs["camera"][:2], torch.full((2, 3), 0.05))
    assert host.device.type == "cpu"


def test_train_bc_moves_its_data_to_the_trainers_device_only_when_asked(tmp_path, monkeypatch):
    moved = []
    original = DemoData.to
    monkeypatch.setattr(DemoData, "to", lambda self, device: moved.append(str(device)) or original(self, device))
    common = ("train.steps=5", "train.n_demos=2", "train.eval_episodes=1", "train.device=cpu")
    TRAINERS.get("bc")(reach_cfg(tmp_path, *common, "name=host"), None)
    assert moved == []
    metrics = TRAINERS.get("bc")(reach_cfg(tmp_path, *common, "train.data_on_device=true", "name=dev"), None)
    assert moved == ["cpu"] and metrics["samples_seen"] == 5 * 64
