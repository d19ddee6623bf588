"""The best SAC checkpoint of a run, by periodic evaluation (SB3 EvalCallback's ``best_model``, atomic).
The names (``best``, ``best-<steps>/``, ``best.json``) and the reader, ``best_folder``, are in
:mod:`ast_robot.run_layout`; this module writes.

Success under randomization can fall late in training; the final ``sac.zip`` then is not the policy to
ship. Each evaluation that beats the best success so far writes the model, *its* observation statistics
(VecNormalize keeps updating them: the final statistics do not fit an earlier model) and a note of when
it was taken into a fresh folder ``best-<env steps>/``; then the link ``best`` is swapped onto it with one
rename, so a reader always finds a whole checkpoint (the old one or the new one), never half of one.

    run_dir/sac.zip, obs_norm.json          the final model
    run_dir/best -> best-12000/             the best one: sac.zip, obs_norm.json, best.json
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ast_robot.fileio import atomic_write_json, fsync_dir
from ast_robot.run_layout import BEST_LINK, BEST_NOTE, BEST_PREFIX, best_candidate, best_folder


def save_best(run_dir: Path, note: dict[str, Any], write: Callable[[Path], Any]) -> Path:
    """``write(folder)`` the checkpoint into a fresh folder, add ``note``, make it the run's best; returns it.

    ``note`` needs ``env_steps`` (it names the folder)."""
    run_dir = Path(run_dir)
    folder = best_candidate(run_dir, note["env_steps"])
    if folder.exists():  # a rerun into the same run_dir
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write(folder)
    atomic_write_json(folder / BEST_NOTE, note)
    fsync_dir(folder)
    old = best_folder(run_dir)
    old = None if old is None else old.resolve()  # the folder, not the link about to change
    tmp = run_dir / f".{BEST_LINK}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(folder.name, tmp)  # relative: the run folder can move
    os.replace(tmp, run_dir / BEST_LINK)  # the swap: one rename
    fsync_dir(run_dir)
    if old is not None and old != folder.resolve():
        shutil.rmtree(old, ignore_errors=True)
    return folder


def clear_best(run_dir: Path) -> None:
    """Forget an earlier run's best checkpoint (a new run into the same folder must not ship the old one)."""
    run_dir = Path(run_dir)
    (run_dir / BEST_LINK).unlink(missing_ok=True)
    for folder in run_dir.glob(f"{BEST_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)
