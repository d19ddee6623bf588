"""bench/ckpt_policy.py: a BC run's trainer checkpoint as an evaluable run folder (checkpoint choice, issue 20)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from ast_robot.cli import main
from ast_robot.config import load_config
from ast_robot.policies.policy import PolicyBase
from ast_robot.run_layout import POLICY_DIR
from ast_robot.trainers import TRAINERS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.ckpt_policy import convert  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
ENV = "ast_robot/PickPlaceUR5e-v0"
CONFIG = Path(__file__).resolve().parents[2] / "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
SMALL = ["env.camera_size=[48,48]", "policy.n_keypoints=2", "train.scenes=0", "train.eval_episodes=1",
         "train.batch_size=8", "gate.enabled=false", "train.steps=4", "train.checkpoint_every=2"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 4-step two_stage BC run with trainer checkpoints at steps 2 and 4 (and its policy/ at the end)."""
    tmp = tmp_path_factory.mktemp("ckpt_policy")
    assert main(["demos", "collect", "--env", ENV, "--observation", "deploy", "--visual", "--objects", "2", "--pads",
                 "2", "--camera-size", "48", "48", "--episodes", "2", "--out", str(tmp / "demos")]) == 0  # fmt: skip
    cfg = load_config(CONFIG, [f"run_root={tmp}", "name=r", f"train.demos={tmp / 'demos'}",
                               "policy.hidden_sizes=[32,32]", *SMALL])  # fmt: skip
    TRAINERS.get("bc")(cfg, None, show_progress=False)
    return tmp


def _obs(policy: PolicyBase) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: (torch.rand((1, *shape), generator=g) * (255 if dtype == "uint8" else 1)).to(getattr(torch, dtype))
            for k, (shape, dtype) in policy.spec.items()}  # fmt: skip


def test_the_last_checkpoint_converted_is_the_runs_own_policy_null_case(run, tmp_path):
    out = convert(run / "r" / "ckpt-00000004", run / "r" / POLICY_DIR, tmp_path / "last")
    assert out.name == "ckpt-00000004" and (tmp_path / "last" / "config.yaml").is_file()
    mine, theirs = PolicyBase.load(tmp_path / "last" / POLICY_DIR), PolicyBase.load(run / "r" / POLICY_DIR)
    for (k, a), (j, b) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=True):
        assert k == j and torch.equal(a, b)
    obs = _obs(theirs)
    with torch.inference_mode():
        assert torch.equal(mine.head.mode(mine.embed(obs)), theirs.head.mode(theirs.embed(obs)))


def test_an_earlier_checkpoint_gives_its_own_weights_and_a_foreign_network_is_refused(run, tmp_path):
    convert(run / "r" / "ckpt-00000002", run / "r" / POLICY_DIR, tmp_path / "early")
    early, last = PolicyBase.load(tmp_path / "early" / POLICY_DIR), PolicyBase.load(run / "r" / POLICY_DIR)
    assert any(not torch.equal(a, b) for a, b in zip(early.state_dict().values(), last.state_dict().values()))
    cfg = load_config(CONFIG, [f"run_root={run}", "name=wide", f"train.demos={run / 'demos'}",
                               "policy.hidden_sizes=[16]", *SMALL])  # fmt: skip
    TRAINERS.get("bc")(cfg, None, show_progress=False)
    with pytest.raises(ValueError, match=r"ckpt-00000002/state.pt: its weights do not fit the template .*same network"):
        convert(run / "r" / "ckpt-00000002", run / "wide" / POLICY_DIR, tmp_path / "bad")


def test_several_checkpoints_give_their_weights_mean_and_one_twice_gives_itself(run, tmp_path):
    ckpts = [run / "r" / "ckpt-00000002", run / "r" / "ckpt-00000004"]
    convert([ckpts[1], ckpts[1]], run / "r" / POLICY_DIR, tmp_path / "twice")  # null case: the mean of x and x is x
    twice, last = PolicyBase.load(tmp_path / "twice" / POLICY_DIR), PolicyBase.load(run / "r" / POLICY_DIR)
    assert all(torch.equal(a, b) for a, b in zip(twice.state_dict().values(), last.state_dict().values(), strict=True))
    out = convert(ckpts, run / "r" / POLICY_DIR, tmp_path / "mean")
    assert out.name == "ckpt-00000004"  # stored under the last one's step
    early = convert(ckpts[0], run / "r" / POLICY_DIR, tmp_path / "early")
    mean, first = PolicyBase.load(out.parent), PolicyBase.load(early.parent)
    for (k, m), a, b in zip(mean.state_dict().items(), first.state_dict().values(), last.state_dict().values(), strict=True):
        expected = (a.float() + b.float()) / 2 if m.is_floating_point() else b
        torch.testing.assert_close(m.float(), expected.float(), msg=k)
