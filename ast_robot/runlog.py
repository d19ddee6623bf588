"""Conventions of long-running commands: a run directory, TensorBoard scalars and a rich progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import ProgressColumn
from rich.text import Text

from ast_robot.config import save_config
from ast_robot.run_layout import CONFIG_FILE, TENSORBOARD_DIR


class RunDir:
    """``<run_root>/<name>/`` with the resolved config saved in it and lazily opened TensorBoard scalars."""

    def __init__(self, cfg: Any, root: str | Path | None = None) -> None:
        self.cfg = cfg
        self.path = Path(root if root is not None else cfg.run_root) / cfg.name
        self.path.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(self.path)
        save_config(cfg, self.path / CONFIG_FILE, header="Resolved config of this run (written by ast_robot).")
        self._writer = None

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.path / TENSORBOARD_DIR))
        self._writer.add_scalar(tag, float(value), step)

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        for tag, value in values.items():
            self.scalar(f"{prefix}{tag}", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def clean_stale_temporaries(run_dir: Path) -> list[Path]:
    """At a run's start: remove what a killed earlier run left half-written in the run folder and in its
    direct subfolders (``policy/``, ``eval/``, ``best-*/``): temporary checkpoint folders and files."""
    from ast_robot.fileio import remove_stale_temporaries

    folders = [run_dir, *(p for p in run_dir.iterdir() if p.is_dir() and not p.is_symlink())]
    return [p for folder in folders for p in remove_stale_temporaries(folder, own_too=True)]


class _RateColumn(ProgressColumn):
    """Items per second (rich's own speed column formats bytes)."""

    def render(self, task: Any) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "-/s")


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar with rate and ETA; yields ``advance(n=1, **fields)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               _RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]  # fmt: skip
    with Progress(*columns, disable=not enabled, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields: Any) -> None:
            info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            bar.update(task, advance=n, info=info)

        yield advance
