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
    assert r0["local_kept"] != r1["local_kept"] or r0["first_indices"] != r1["first_indices"]


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.init_distributed()
    assert info == distributed.DistInfo() and info.is_main
    assert distributed.current().world == 1
