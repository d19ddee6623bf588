"""A run killed while writing a checkpoint leaves a temporary folder; the next start removes it, and never
the temporaries of a writer that is still alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ast_robot.config.experiment import ExperimentConfig
from ast_robot.core import checkpoint as ckpt
from ast_robot.fileio import remove_stale_temporaries, temp_prefix
from ast_robot.runlog import RunDir

_HANGS_IN_SAVE = """
import time, torch
from ast_robot.core import checkpoint as ckpt
def hang(obj, fh):  # the state file is half written when the process is killed
    fh.write(b"partial")
    fh.flush()
    time.sleep(120)
torch.save = hang
ckpt.save_checkpoint({run!r}, 5, {{"model": {{}}}}, "name: a\\n")
"""


def killed_mid_save(run: Path) -> list[Path]:
    """Start a save in a child process, SIGKILL it while the checkpoint is half written; its leftovers."""
    child = subprocess.Popen([sys.executable, "-c", _HANGS_IN_SAVE.format(run=str(run))])
    try:
        deadline = time.monotonic() + 60
        while not any((p / "state.pt").is_file() for p in run.glob(".ckpt-*.tmp")):
            assert time.monotonic() < deadline and child.poll() is None, "the child never started its save"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return sorted(run.glob(".ckpt-*"))


def test_next_run_start_removes_a_killed_runs_temporary_checkpoint(tmp_path):
    run = tmp_path / "run"
    left = killed_mid_save(run)
    assert len(left) == 1 and left[0].is_dir()  # what the kill left behind
    assert ckpt.list_checkpoints(run) == []  # never taken for a checkpoint
    RunDir(ExperimentConfig(name="run", run_root=str(tmp_path)))
    assert sorted(run.glob(".ckpt-*")) == []


def test_next_save_removes_it_too(tmp_path):
    run = tmp_path / "run"
    killed_mid_save(run)
    ckpt.save_checkpoint(run, 6, {"model": {}}, "name: a\n")
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["ckpt-00000006"]


def test_a_live_writers_temporaries_are_kept(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".ckpt-00000001.{other.pid}.abcd1234.tmp"
        live.mkdir()
        own = tmp_path / f"{temp_prefix('config.yaml')}abcd1234.tmp"
        own.write_text("in flight")
        keep = tmp_path / ".hidden-user-file"
        keep.write_text("not ours")
        assert remove_stale_temporaries(tmp_path) == []  # the other writer is alive, the own one in flight
        assert remove_stale_temporaries(tmp_path, own_too=True) == [own]  # a starting run has none in flight
    finally:
        other.kill()
        other.wait()
    assert remove_stale_temporaries(tmp_path) == [live]
    assert keep.is_file()


def test_temporary_names_carry_the_pid():
    assert temp_prefix("ckpt-00000003") == f".ckpt-00000003.{os.getpid()}."
