"""The policy node with a bad checkpoint: it logs why configure failed and exits 1, whatever the error type.

rclpy swallows an exception raised in a lifecycle transition; the node once caught only some types, so a
corrupt or malicious checkpoint exited 1 with no output. Runs the node's ``run`` in a child process, past
the CLI's own check of the checkpoint.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

_RUN = """
import sys
from ast_robot_ros import policy_node as pn
{patch}
sys.exit(pn.run({checkpoint!r}, "ur5e"))
"""
_RAISES = """
from ast_robot.deploy.runner import PolicyRunner
def from_checkpoint(*args, **kwargs):
    raise KeyError("an error type nobody expected")
PolicyRunner.from_checkpoint = from_checkpoint
"""


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def run_node(checkpoint, patch: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    code = _RUN.format(checkpoint=str(checkpoint), patch=patch)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def bad_checkpoint(folder, state: bytes):
    folder.mkdir()
    (folder / "state.pt").write_bytes(state)
    (folder / "config.yaml").write_text("policy: {}\n")
    return folder


@pytest.mark.parametrize("kind", ["random bytes", "pickle payload", "empty"])
def test_bad_checkpoint_is_logged_and_exits_1(tmp_path, kind):
    marker = tmp_path / "PAYLOAD_RAN"
    state = {"random bytes": np.random.default_rng(0).bytes(2048), "pickle payload": pickle.dumps(Payload(marker)),
             "empty": b""}[kind]  # fmt: skip
    ckpt = bad_checkpoint(tmp_path / "ckpt", state)
    done = run_node(ckpt)
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if "configure failed" in line]
    assert len(failed) == 1 and str(ckpt / "state.pt") in failed[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_any_error_type_in_configure_is_logged(tmp_path):
    done = run_node("scripted:reach", patch=_RAISES)
    assert done.returncode == 1, done.stderr
    assert "configure failed: 'an error type nobody expected'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
