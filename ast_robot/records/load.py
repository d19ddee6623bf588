"""The one entry point that reads episode records from any of their stored forms."""

from __future__ import annotations

import warnings
from pathlib import Path

from ast_robot.config.deploy import RosNames
from ast_robot.records.bag import JOURNAL_FILE, read_journal, read_outcome_bag
from ast_robot.records.folder import RECORDS_FILE, read_records
from ast_robot.records.schema import EpisodeRecord


def load_episodes(path: str | Path, topic: str = RosNames().outcome) -> list[EpisodeRecord]:
    """Records from a records folder or a bag (folder with metadata.yaml, or a single .mcap/.db3 file).

    A bag folder whose recorder died before closing it (no metadata.yaml) is read from its outcome
    journal, with a warning that says so."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no episode records: {path} does not exist")
    if path.is_dir() and (path / RECORDS_FILE).is_file():
        return read_records(path)
    if path.is_dir() and not (path / "metadata.yaml").exists() and (path / JOURNAL_FILE).is_file():
        records = read_journal(path / JOURNAL_FILE)
        warnings.warn(f"bag {path} was never closed (no metadata.yaml; recorder killed?): read its "
                      f"{len(records)} outcome records from {JOURNAL_FILE}", stacklevel=2)  # fmt: skip
        return records
    return read_outcome_bag(path, topic)
