"""The run-directory layout has one owner, ast_robot.run_layout (its import rules: tests/test_layout.py)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ast_robot import run_layout as layout


def test_checkpoint_names_come_from_the_layout(tmp_path):
    from ast_robot.core.checkpoint import list_checkpoints, save_checkpoint

    path = save_checkpoint(tmp_path, 12, {"x": 1}, "a: 1\n")
    assert path.name == layout.ckpt_name(12) and path.name.startswith(layout.CKPT_PREFIX)
    assert (path / layout.CONFIG_FILE).read_text() == "a: 1\n"
    assert list_checkpoints(tmp_path) == [path]


def _sac_zip(path: Path, steps: int) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps({"num_timesteps": steps}))


def test_sac_checkpoint_picks_best_then_final(tmp_path):
    from ast_robot.trainers.best_checkpoint import save_best

    assert not layout.is_sac_run(tmp_path)
    _sac_zip(tmp_path / layout.SAC_FILE, 300)
    assert layout.is_sac_run(tmp_path) and layout.best_folder(tmp_path) is None
    assert layout.sac_checkpoint(tmp_path) == (tmp_path, "final checkpoint sac.zip (env step 300)")
    with pytest.raises(FileNotFoundError, match="keeps no best checkpoint"):
        layout.sac_checkpoint(tmp_path, "best")
    note = {"env_steps": 200, "success_rate": 0.5, "episodes": 4}
    folder = save_best(tmp_path, note, lambda f: _sac_zip(f / layout.SAC_FILE, 200))
    assert folder == layout.best_candidate(tmp_path, 200) and layout.best_folder(tmp_path) == tmp_path / layout.BEST_LINK
    best, line = layout.sac_checkpoint(tmp_path)
    assert best == tmp_path / layout.BEST_LINK and line.startswith("best checkpoint best-200/ (env step 200: success 50%")
    assert layout.sac_checkpoint(tmp_path, "final")[0] == tmp_path
    assert layout.run_folder_of(best) == tmp_path  # no config.yaml in the best folder: its run is the parent
    (best.resolve() / layout.CONFIG_FILE).write_text("")
    assert layout.run_folder_of(best) == best
    with pytest.raises(ValueError, match=r"checkpoint 'latest': choose from \['auto', 'best', 'final'\]"):
        layout.sac_checkpoint(tmp_path, "latest")
