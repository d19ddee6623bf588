"""The stages of the demo loop. Each stage returns a one-line status; missing pieces say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ast_robot.config import dump_config
from ast_robot.core.checkpoint import load_checkpoint, load_module_state, save_checkpoint
from ast_robot.runlog import RunDir


def checkpoint_smoke(cfg: Any, run: RunDir) -> str:
    """Save and reload a real checkpoint of a small network; the reloaded outputs must be identical."""
    torch.manual_seed(cfg.seed)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(16, 8)
    loss = net(x).pow(2).mean()
    loss.backward()
    opt.step()
    path = save_checkpoint(run.path, 1, {"model": net.state_dict(), "optimizer": opt.state_dict()}, dump_config(cfg))
    clone = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    load_module_state(clone, load_checkpoint(path).state["model"])
    if not torch.equal(clone(x), net(x)):
        raise RuntimeError("checkpoint round trip changed the network's outputs")
    return f"ok ({Path(path).name}, outputs identical after reload)"


def run_demo(cfg: Any, console: Any) -> list[tuple[str, str]]:
    """Run every stage that exists, in loop order."""
    run = RunDir(cfg)
    results = [("run directory", str(run.path)), ("checkpoint round trip", checkpoint_smoke(cfg, run))]
    run.close()
    return results
