"""Shared test set-up: headless MuJoCo, loopback-only ROS 2 and one ROS domain per xdist worker."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
# No DDS traffic may leave loopback, in every process a test starts.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_index = int(_worker[2:]) if _worker.startswith("gw") and _worker[2:].isdigit() else 0
# Distinct domains per worker keep parallel ROS tests apart (LOCALHOST allows 32 participants/domain);
# AST_TEST_DOMAIN_BASE moves a whole run to other domains, so two suites on one machine never meet.
os.environ["ROS_DOMAIN_ID"] = str(int(os.environ.get("AST_TEST_DOMAIN_BASE", "40")) + _index)

import pytest  # noqa: E402


@pytest.fixture
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


@pytest.fixture
def one_torch_thread():
    """Tiny networks on a loaded 2-core machine run many times slower with two intra-op threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def sb3_logs_in_pytest_tmp(tmp_path_factory):
    """Tests that build SB3 models directly get SB3's default logger, which makes a folder per learn() in the
    system temp folder; this puts those under pytest's own temp folder (trainers/sac.py's models log nowhere)."""
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3_logs"))
    yield
    os.environ.pop("SB3_LOGDIR", None)
