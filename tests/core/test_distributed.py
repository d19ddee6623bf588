"""DDP with 2 gloo processes under torchrun: one shared gate threshold and identical parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ast_robot.core import distributed


def _torchrun(tmp_path: Path, steps: int, mode: str) -> list[dict]:
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(worker), str(tmp_path), str(steps), mode]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stale_scores", "forward_all"])
def test_two_cpu_ranks_share_threshold_and_parameters(tmp_path, mode):
    steps = 12
    r0, r1 = _torchrun(tmp_path, steps, mode)
    assert r0["world"] == r1["world"] == 2
    assert r0["first_indices"] != r1["first_indices"]  # each rank reads its own slice of the batch
    assert r0["thresholds"] == r1["thresholds"]  # one threshold: the counts were all-reduced
    assert len(set(r0["thresholds"])) > 1  # ...and the controller actually moved it
    assert r0["params"] == r1["params"]  # DDP kept the replicas identical
    # Each gate counted the decisions of both ranks (the all-reduced counts), not only its own.
    assert r0["gate_seen"] == r1["gate_seen"] == r0["local_gate_seen"] + r1["local_gate_seen"]
    assert r0["local_gate_seen"] > 0 and r0["local_seen"] == steps * 16
    if mode == "stale_scores":  # one shared score table: what either rank saw counts as seen on both
        assert r0["stale"] == r1["stale"]
        assert r0["stale"]["seen"] == sorted(set(r0["drawn"]) | set(r1["drawn"]))


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.init_distributed()
    assert info == distributed.DistInfo() and info.is_main
    assert distributed.current().world == 1


@pytest.fixture
def one_rank_gloo_group(tmp_path):
    """A real one-process gloo group (cheap): enough for DDP's wrapper, hooks and all-reduce to run."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("policy_type", ["mlp", "sparse_multimodal"])
def test_gated_bc_trains_a_ddp_wrapped_policy(one_rank_gloo_group, policy_type):
    """BC's loss reaches the policy through DDP's forward (DDP does not forward ``embed``/``head``)."""
    import torch
    from torch import nn

    from ast_robot.config import GateConfig, PolicyConfig, SignificanceConfig, TrainConfig
    from ast_robot.core.gate import Gate
    from ast_robot.core.significance import SignificanceModel
    from ast_robot.core.trainer import Trainer
    from ast_robot.policies.policy import build_policy
    from ast_robot.trainers.bc import DemoData, bc_loss
    from tests.policies.conftest import make_batch, make_space

    torch.manual_seed(0)
    space = make_space(camera=False)
    demos = make_batch(space, 48)
    data = DemoData({k: v for k, v in demos.items() if k != "action"}, demos.pop("action"))
    policy = build_policy(PolicyConfig(type=policy_type, hidden_sizes=[32]), space, 7)
    ddp = nn.parallel.DistributedDataParallel(policy)
    before = [p.detach().clone() for p in policy.parameters()]
    cfg = TrainConfig(steps=3, batch_size=16, device="cpu")
    trainer = Trainer(ddp, bc_loss, torch.optim.SGD(ddp.parameters(), lr=0.1), data, cfg,
                      significance=SignificanceModel(SignificanceConfig(weights={"loss": 1.0, "novelty": 0.5})),
                      gate=Gate(GateConfig(target_rate=0.5)), show_progress=False)  # fmt: skip
    trainer.fit()
    assert trainer.counters.backward_samples > 0
    assert any(not torch.equal(a, p) for a, p in zip(before, policy.parameters()))  # DDP's backward stepped


def test_forced_group_of_one_runs_the_ddp_path(tmp_path):
    """torchrun with one process and ``init_distributed(force=True)`` (the distributed benchmark's baseline):
    the process joins a gloo group of one, the model is DDP-wrapped and the gate's counts go through the
    all-reduce; the worker's per-step records are complete."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(root / "bench/distributed_worker.py"), "--kind", "vision", "--config",
           str(root / "configs/experiments/vision_digits.yaml"), "--steps", "6", "--eval-every", "3",
           "--out", str(tmp_path), "--set", "train.device=cpu", "train.batch_size=32"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    rank = json.loads((tmp_path / "rank0.json").read_text())
    assert rank["world"] == 1 and rank["backend"] == "gloo" and rank["ddp"]
    assert len(rank["thresholds"]) == len(rank["step_s"]) == len(rank["kept"]) == 6
    assert sum(rank["seen"]) == 6 * 32 and 0 < sum(rank["kept"]) <= 6 * 32
    assert [e["step"] for e in rank["evals"]] == [3, 6] and 0.0 <= rank["evals"][-1]["accuracy"] <= 1.0
