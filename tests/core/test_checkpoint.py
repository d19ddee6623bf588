"""Checkpoint round trip, RNG restore, atomicity under a crash and config compatibility."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.config import ExperimentConfig, dump_config
from ast_robot.core import checkpoint as ckpt


def small_net():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def trained(seed=0):
    torch.manual_seed(seed)
    net = small_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 4)).sum().backward()
        opt.step()
    return net, opt


def test_round_trip_restores_tensors_optimizer_and_rng(tmp_path):
    net, opt = trained()
    cfg_text = dump_config(ExperimentConfig(name="t"))
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = ckpt.save_checkpoint(tmp_path, 3, {"model": net.state_dict(), "optimizer": opt.state_dict()}, cfg_text)
    expected = (random.random(), np.random.rand(), torch.rand(1))

    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded.path == path and loaded.step == 3
    clone = small_net()
    ckpt.load_module_state(clone, loaded.state["model"])
    for a, b in zip(net.state_dict().values(), clone.state_dict().values()):
        assert torch.equal(a, b)
    opt2 = torch.optim.Adam(clone.parameters(), lr=1e-2)
    opt2.load_state_dict(loaded.state["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    ckpt.set_rng_state(loaded.state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert loaded.config().name == "t"
    assert loaded.meta["torch"] == torch.__version__ and "ast_robot" in loaded.meta


def test_crash_before_rename_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    net, _ = trained()
    ckpt.save_checkpoint(tmp_path, 1, {"model": net.state_dict()}, "name: a\n")
    real_replace = ckpt.os.replace

    def crash(src, dst):
        if "ckpt-00000002" in str(dst):
            raise OSError("disk pulled out")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        ckpt.save_checkpoint(tmp_path, 2, {"model": net.state_dict()}, "name: a\n")
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded.step == 1
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt-00000001"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resaving_a_step_replaces_it_whole_or_keeps_the_old_copy(tmp_path, monkeypatch):
    net, _ = trained()
    ckpt.save_checkpoint(tmp_path, 5, {"model": net.state_dict(), "tag": 1}, "name: a\n")
    ckpt.save_checkpoint(tmp_path, 5, {"model": net.state_dict(), "tag": 2}, "name: b\n")
    assert ckpt.load_checkpoint(tmp_path).state["tag"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left aside
    real_replace = ckpt.os.replace

    def crash(src, dst):  # the new copy fails to move in, after the old one was moved aside
        if Path(src).parent == tmp_path and str(src).endswith(".tmp"):  # the checkpoint dir, not its files
            raise OSError("disk pulled out")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        ckpt.save_checkpoint(tmp_path, 5, {"model": net.state_dict(), "tag": 3}, "name: c\n")
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    assert ckpt.load_checkpoint(tmp_path / "ckpt-00000005").state["tag"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_half_written_directory_is_never_picked(tmp_path):
    net, _ = trained()
    ckpt.save_checkpoint(tmp_path, 1, {"model": net.state_dict()}, "name: a\n")
    (tmp_path / "ckpt-00000009").mkdir()  # e.g. a copy that died part-way: no state.pt
    assert ckpt.load_checkpoint(tmp_path).step == 1


def test_keep_last_prunes_old_checkpoints(tmp_path):
    net, _ = trained()
    for step in range(4):
        ckpt.save_checkpoint(tmp_path, step, {"model": net.state_dict()}, "", keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt-00000002", "ckpt-00000003"]


def test_mismatched_network_gives_clear_error(tmp_path):
    net, _ = trained()
    ckpt.save_checkpoint(tmp_path, 1, {"model": net.state_dict()}, "")
    other = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    with pytest.raises(ValueError, match="shape mismatches"):
        ckpt.load_module_state(other, ckpt.load_checkpoint(tmp_path).state["model"])


def test_config_compatibility_check_names_the_field():
    a, b = ExperimentConfig(), ExperimentConfig()
    b.policy.d_model = 128
    ckpt.check_config_compatible(a, ExperimentConfig())
    with pytest.raises(ValueError, match="policy.d_model: checkpoint has 64, config has 128"):
        ckpt.check_config_compatible(a, b)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.load_checkpoint(tmp_path)


def test_checkpoint_folder_and_files_get_the_umask_modes(tmp_path):
    from ast_robot.fileio import default_mode

    net, _ = trained()
    path = ckpt.save_checkpoint(tmp_path, 1, {"model": net.state_dict()}, dump_config(ExperimentConfig(name="t")))
    assert path.stat().st_mode & 0o777 == default_mode(directory=True)  # not mkdtemp's owner-only 0700
    assert {p.stat().st_mode & 0o777 for p in path.iterdir()} == {default_mode()}


def test_keep_last_never_drops_the_checkpoint_just_written_after_a_resume(tmp_path):
    net, _ = trained()
    save = lambda step: ckpt.save_checkpoint(tmp_path, step, {"model": net.state_dict()}, "name: t\n", keep_last=2)  # noqa: E731
    for step in (100, 200, 300):
        save(step)
    written = save(150)  # a run resumed from step 100: 200 and 300 are another history, left alone
    assert written.is_dir() and ckpt.resolve_checkpoint(tmp_path) == written
    names = lambda: [p.name[5:] for p in ckpt.list_checkpoints(tmp_path)]  # noqa: E731
    assert names() == ["00000150", "00000200", "00000300"]  # 100 went when 300 was saved
    save(160)  # keeps 160 and the step just before it
    save(170)
    assert names() == ["00000160", "00000170", "00000200", "00000300"]
