"""The records folder: ``records.jsonl`` (one record per line, arrays left out) and ``arrays-<hash>.npz``
(the arrays, keyed by line index). ``records.jsonl`` is renamed into place last, so a reader sees either the
old set or the new one. What ``ast-robot eval`` and ``ast-robot episodes`` write, and ``gap-report`` reads.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.fileio import atomic_write, atomic_write_text, check_nonempty, reading
from ast_robot.records.schema import ARRAY_FIELDS, EpisodeRecord, RecordError

RECORDS_FILE = "records.jsonl"


def write_records(directory: str | Path, records: Iterable[EpisodeRecord]) -> Path:
    """Write ``records.jsonl`` + ``arrays-<hash>.npz`` into ``directory`` atomically; returns the JSONL path.

    The content-addressed array file is written first and the JSONL (which names it) is renamed into
    place last; array files no longer named by the JSONL are removed afterwards.
    """
    records = list(records)
    for i, rec in enumerate(records):
        if not isinstance(rec, EpisodeRecord):
            raise TypeError(f"records[{i}] must be an EpisodeRecord, got {type(rec).__name__}")
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {}
    for i, rec in enumerate(records):
        for name in ARRAY_FIELDS:
            if getattr(rec, name) is not None:
                arrays[f"{i}.{name}"] = getattr(rec, name)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    payload = buf.getvalue()
    npz_name = f"arrays-{hashlib.sha256(payload).hexdigest()[:16]}.npz"
    atomic_write(directory / npz_name, lambda fh: fh.write(payload))
    lines = [json.dumps({**rec.to_dict(include_arrays=False), "arrays_file": npz_name, "arrays_key": str(i)},
                        allow_nan=False) for i, rec in enumerate(records)]  # fmt: skip
    path = atomic_write_text(directory / RECORDS_FILE, "".join(line + "\n" for line in lines))
    for stale in directory.glob("arrays-*.npz"):
        if stale.name != npz_name:
            stale.unlink(missing_ok=True)
    return path


def read_records(directory: str | Path) -> list[EpisodeRecord]:
    """Read and validate every record of a folder written by :func:`write_records`."""
    directory = Path(directory)
    path = directory / RECORDS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no episode records: {path} does not exist")
    records: list[EpisodeRecord] = []
    cache: dict[str, Any] = {}
    with reading(path, "one JSON episode record per line (UTF-8 text, written by ast_robot)"):
        text = path.read_bytes().decode("utf-8")
    try:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append(_parse_line(line, directory, cache, f"{path}:{lineno}"))
    finally:
        for npz in cache.values():
            npz.close()
    return records


def _parse_line(line: str, directory: Path, cache: dict[str, Any], where: str) -> EpisodeRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise RecordError("<json>", line[:80], f"is not valid JSON ({err})", where) from err
    if not isinstance(data, dict):
        raise RecordError("<record>", data, "must be a JSON object", where)
    try:
        arrays = _load_arrays(data, directory, cache)
        return EpisodeRecord.from_dict(data, arrays)
    except RecordError as err:
        raise RecordError(err.field, err.value, err.reason, where) from err


def _load_arrays(data: dict[str, Any], directory: Path, cache: dict[str, Any]) -> dict[str, Any]:
    name, key = data.get("arrays_file"), data.get("arrays_key")
    if name is None:  # arrays inline
        return {}
    if not isinstance(name, str) or "/" in name or not name.endswith(".npz"):
        raise RecordError("arrays_file", name, "must be the name of an .npz file in the same folder")
    if name not in cache:
        if not (directory / name).is_file():
            raise RecordError("arrays_file", name, f"names a missing file in {directory}")
        with reading(directory / name, _ARRAYS_EXPECTED):
            cache[name] = np.load(check_nonempty(directory / name, _ARRAYS_EXPECTED), allow_pickle=False)
    npz = cache[name]
    with reading(directory / name, _ARRAYS_EXPECTED):  # members are read (and may be found bad) here
        out = {f: npz[f"{key}.{f}"] for f in ARRAY_FIELDS if f"{key}.{f}" in npz.files}
    out.setdefault("joint_targets", None)
    return out


_ARRAYS_EXPECTED = "the records' .npz of numeric arrays written by ast_robot (no pickled objects)"
