"""The run-directory layout: every file and folder name a run holds, and the functions that find them.

The trainers write a run here, ``ast-robot eval`` and the deployment loader read it; both sides take the
names from this one module. It sits at the package's bottom (it imports only :mod:`ast_robot.fileio`), so
``deploy`` finds a run's policy without importing a trainer (or torch, or stable-baselines3)::

    <run_root>/<name>/
        config.yaml             the resolved experiment config (runlog.RunDir)
        tb/                     TensorBoard scalars
        ckpt-<step>/            trainer checkpoints (core.checkpoint; ``latest`` names the newest)
        policy/                 BC: the policy checkpoint (its own ckpt-<step>/ + latest), contract in its state
        sac.zip                 SAC: the final SB3 model
        obs_norm.json           SAC: the observation statistics of the training VecNormalize (absent: raw inputs)
        contract.json           SAC: the deployment contract (ast_robot.robot.contract)
        best -> best-<steps>/   SAC: the best periodic evaluation's sac.zip, obs_norm.json, contract.json, best.json
        eval/                   the final evaluation: episode records and summary.json
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

CONFIG_FILE = "config.yaml"
TENSORBOARD_DIR = "tb"
CKPT_PREFIX = "ckpt-"  # + the step, 8 digits
POLICY_DIR = "policy"
SAC_FILE = "sac.zip"
NORM_FILE = "obs_norm.json"
CONTRACT_FILE = "contract.json"  # beside an SB3 model; a BC checkpoint carries its contract in its state
BEST_LINK = "best"
BEST_PREFIX = "best-"  # + the env step of the evaluation that chose it
BEST_NOTE = "best.json"  # env_steps, gradient_steps, success_rate, episodes of the evaluation that chose it
EVAL_DIR = "eval"
EVAL_SUMMARY = "summary.json"
CHECKPOINTS = ("auto", "best", "final")  # which SAC model acting loads (auto: best when kept, else final)


def ckpt_name(step: int) -> str:
    """The folder name of the trainer checkpoint at ``step`` (sorts by step as text)."""
    return f"{CKPT_PREFIX}{step:08d}"


def best_candidate(run_dir: Path, env_steps: int) -> Path:
    """The folder a best checkpoint taken at ``env_steps`` is written into before ``best`` points at it."""
    return Path(run_dir) / f"{BEST_PREFIX}{int(env_steps)}"


def best_folder(run_dir: Path) -> Path | None:
    """The run's best checkpoint folder (None: none kept)."""
    link = Path(run_dir) / BEST_LINK
    return link if link.is_dir() else None


def is_sac_run(path: Path) -> bool:
    """Whether ``path`` holds a SAC model: a final ``sac.zip`` or a best checkpoint."""
    return (Path(path) / SAC_FILE).is_file() or best_folder(path) is not None


def sac_checkpoint(run_dir: Path, which: str = "auto") -> tuple[Path, str]:
    """(folder holding sac.zip + obs_norm.json, a line saying which model it is) of a SAC run."""
    from ast_robot.fileio import read_json, reading

    if which not in CHECKPOINTS:
        raise ValueError(f"checkpoint {which!r}: choose from {list(CHECKPOINTS)}")
    run_dir = Path(run_dir)
    best = best_folder(run_dir)
    if which == "best" and best is None:
        raise FileNotFoundError(f"{run_dir} keeps no best checkpoint (train.keep_best was off or no evaluation ran)")
    if best is not None and which != "final":
        expected = "the JSON note of the best checkpoint (env_steps, success_rate, episodes)"
        note = read_json(best / BEST_NOTE, expected)
        with reading(best / BEST_NOTE, expected):
            return best, (f"best checkpoint {best.resolve().name}/ (env step {int(note['env_steps'])}: success "
                          f"{float(note['success_rate']):.0%} on {int(note['episodes'])} periodic-evaluation "
                          "episodes)")  # fmt: skip
    return run_dir, f"final checkpoint {SAC_FILE} (env step {_final_steps(run_dir)})"


def _final_steps(run_dir: Path) -> str:
    try:
        with zipfile.ZipFile(run_dir / SAC_FILE) as z:
            return str(int(json.loads(z.read("data"))["num_timesteps"]))
    except Exception:  # noqa: BLE001 - only for display; loading the model says what is wrong with the file
        return "unknown"


def run_folder_of(folder: Path) -> Path:
    """The run folder of a SAC model folder (the run itself, or the run above its ``best-<steps>/``)."""
    folder = Path(folder)
    return folder if (folder / CONFIG_FILE).is_file() else folder.parent
