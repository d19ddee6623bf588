"""Self-describing, atomically written checkpoints.

Layout: ``<run_dir>/ckpt-<step>/`` holding ``state.pt`` (weights, optimizer, scheduler, gate, RNG states,
step, extra), ``config.yaml`` (the resolved experiment config) and ``meta.json`` (step, versions, time).
The directory is written under a temporary name, fsynced and renamed, so a crash leaves either the whole
checkpoint or none of it; ``latest`` (a text file with the directory name) is replaced atomically last.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ast_robot.fileio import (
    BadFile,
    atomic_write_json,
    atomic_write_text,
    check_nonempty,
    default_mode,
    fsync_dir,
    read_json,
    reading,
    remove_stale_temporaries,
    temp_prefix,
)
from ast_robot.run_layout import CKPT_PREFIX, CONFIG_FILE, ckpt_name

STATE_FILE, META_FILE, LATEST_FILE = "state.pt", "meta.json", "latest"  # in a checkpoint folder (CONFIG_FILE too)
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint. ``state`` maps names ('model', 'optimizer', ...) to state dicts."""

    path: Path
    step: int
    state: dict[str, Any]
    config_text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def config(self, cls: type | None = None) -> Any:
        """The stored config, parsed and validated (as ExperimentConfig unless ``cls`` is given)."""
        from ast_robot.config import from_dict
        from ast_robot.config.experiment import ExperimentConfig
        from ast_robot.config.loader import safe_load

        with reading(self.path / CONFIG_FILE, "the YAML experiment config the checkpoint was trained with"):
            return from_dict(cls or ExperimentConfig, safe_load(self.config_text) or {})


def rng_state() -> dict[str, Any]:
    """Python, NumPy (legacy global) and torch RNG states, in a form `weights_only` loading accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": _py_state_to_tensor(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_py_state_from_tensor(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    state: dict[str, Any],
    config_text: str,
    keep_last: int | None = None,
) -> Path:
    """Write ``run_dir/ckpt-<step>`` atomically and point ``latest`` at it.

    ``state`` holds state dicts by name (model, optimizer, scheduler, gate, ...); RNG states are added.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / ckpt_name(step)
    remove_stale_temporaries(run_dir)  # those of a killed earlier run (the pid in the name tells)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final.name), suffix=".tmp", dir=run_dir))
    try:
        tmp.chmod(default_mode(directory=True))  # mkdtemp makes 0700: the checkpoint would be owner-only
        payload = {**state, "rng": rng_state(), "step": step, "format_version": FORMAT_VERSION}
        with (tmp / STATE_FILE).open("wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write_text(tmp / CONFIG_FILE, config_text)
        atomic_write_json(tmp / META_FILE, _meta(step))
        fsync_dir(tmp)
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(run_dir)
    atomic_write_text(run_dir / LATEST_FILE, final.name + "\n")
    if keep_last:
        _prune(run_dir, final, keep_last)
    return final


def _prune(run_dir: Path, final: Path, keep_last: int) -> None:
    """Keep ``final`` and the ``keep_last - 1`` checkpoints of the steps just before it. Steps after it
    (a run resumed from an earlier checkpoint, or an older run in the same folder) are another history:
    they are left alone, never counted in place of the checkpoint just written."""
    earlier = [p for p in list_checkpoints(run_dir) if p.name < final.name]
    for old in earlier[: max(0, len(earlier) - (keep_last - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def _replace_dir(new: Path, final: Path) -> None:
    """Move ``new`` to ``final``; a ``final`` already there (the same step saved again) is renamed aside
    first and deleted only after the new one is in place, so the step is never missing its whole copy
    (between the two renames the old copy lies in a hidden ``.<name>.old-*`` directory)."""
    if not final.exists():
        os.replace(new, final)
        return
    aside = Path(tempfile.mkdtemp(prefix=temp_prefix(final.name, old=True), dir=final.parent))
    os.replace(final, aside / final.name)
    try:
        os.replace(new, final)
    except BaseException:
        os.replace(aside / final.name, final)  # the old copy goes back: whole or none
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary directories are ignored)."""
    run_dir = Path(run_dir)
    found = [p for p in run_dir.glob(f"{CKPT_PREFIX}*") if p.is_dir() and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint directory or a run directory (then use `latest`, else the newest)."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    latest = path / LATEST_FILE
    if latest.is_file():
        with reading(latest, "the name of a checkpoint folder of this run, e.g. ckpt-00000100"):
            name = latest.read_bytes().decode("utf-8").strip()
            if not _CKPT_NAME.fullmatch(name):  # never a path out of the run folder
                raise ValueError(f"names {name[:40]!r}, not a checkpoint folder")
        if (path / name / STATE_FILE).is_file():
            return path / name
    found = list_checkpoints(path) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no checkpoint at {path}: expected a ckpt-<step>/ directory or a run directory")
    return found[-1]


_CKPT_NAME = re.compile(re.escape(CKPT_PREFIX) + r"\d+")
POLICY_EXPECTED = "a policy checkpoint written by ast_robot (policy metadata and weights that fit it)"
STATE_EXPECTED = "a torch file of tensors and plain data written by ast_robot (weights, step, format_version)"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (no code from the file runs: objects other
    than tensors and plain data are refused). A bad file is one :class:`~ast_robot.fileio.BadFile` line."""
    path = resolve_checkpoint(path)
    state_file = check_nonempty(path / STATE_FILE, STATE_EXPECTED)
    with reading(state_file, STATE_EXPECTED):
        state = torch.load(state_file, map_location=map_location, weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"holds a {type(state).__name__}, not a mapping of named states")
        version = state.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"checkpoint format_version {version!r} is not supported (this ast_robot reads "
                             f"{FORMAT_VERSION})")  # fmt: skip
        step = int(state["step"])
    meta = read_json(path / META_FILE, "the checkpoint's JSON metadata") if (path / META_FILE).exists() else {}
    if not isinstance(meta, dict):
        raise BadFile(path / META_FILE, f"holds a JSON {type(meta).__name__}", "a JSON object")
    config_file = path / CONFIG_FILE
    with reading(config_file, "the YAML config the checkpoint was trained with (UTF-8 text)"):
        config_text = config_file.read_bytes().decode("utf-8")
    return Checkpoint(path, step, state, config_text, meta)


def check_config_compatible(stored: Any, current: Any, sections: tuple[str, ...] = ("policy",)) -> None:
    """Raise if the named config sections differ (e.g. a checkpoint of another network shape)."""
    from ast_robot.config import to_dict

    diffs = []
    for section in sections:
        old, new = to_dict(getattr(stored, section)), to_dict(getattr(current, section))
        diffs += [f"{section}.{k}: checkpoint has {old.get(k)!r}, config has {new.get(k)!r}"
                  for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]  # fmt: skip
    if diffs:
        raise ValueError("checkpoint does not fit the config:\n  " + "\n  ".join(diffs))


def load_module_state(module: torch.nn.Module, state: dict[str, Any], what: str = "model") -> None:
    """``load_state_dict`` with an error that lists missing/unexpected/mis-shaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        raise ValueError(
            f"{what} checkpoint does not fit the network: missing={missing[:5]} unexpected={unexpected[:5]} "
            f"shape mismatches={shapes[:5]}"
        )
    module.load_state_dict(state)


def _meta(step: int) -> dict[str, Any]:
    from ast_robot import __version__

    return {"step": step, "format_version": FORMAT_VERSION, "ast_robot": __version__,
            "torch": torch.__version__, "numpy": np.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip


def _py_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _py_state_from_tensor(state: dict[str, Any]) -> tuple:
    return (state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss"])
