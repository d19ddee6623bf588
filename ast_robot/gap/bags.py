"""Real episode records from a ROS 2 bag of ``/ast/outcome`` (std_msgs/String, one JSON record each),
or from a records folder (``records.jsonl`` + arrays) written by :func:`ast_robot.gap.outcomes.write_records`.

Bags are read with `rosbags` (no ROS install needed), imported lazily: it is part of the `ros` extra.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from ast_robot.deploy.bag import JOURNAL_FILE
from ast_robot.gap.outcomes import RECORDS_FILE, EpisodeRecord, RecordError, from_json, read_records, to_json

OUTCOME_TOPIC = "/ast/outcome"
_STRING = "std_msgs/msg/String"
_INSTALL = 'reading bags needs rosbags: pip install "ast-robot[ros]"'


def _rosbags():
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return (
        AnyReader,
        Writer,
        StoragePlugin,
        get_typestore(Stores.ROS2_KILTED),
    )  # the distro of the ROS 2 wheels


def load_episodes(path: str | Path, topic: str = OUTCOME_TOPIC) -> list[EpisodeRecord]:
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


def read_journal(path: str | Path) -> list[EpisodeRecord]:
    """Records from a bag's outcome journal (one JSON record per line). Only the last line may be cut
    short (the recorder died while writing it): it is left out with a warning; a bad line elsewhere is
    an error naming the line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # text ends with "\n" when the last record was finished
    if tail:
        warnings.warn(f"{path}: the last line was cut short ({len(tail)} bytes, no newline): left out",
                      stacklevel=2)  # fmt: skip
    records = []
    for i, line in enumerate(complete, start=1):
        try:
            records.append(from_json(line))
        except RecordError as err:
            raise RecordError(err.field, err.value, err.reason, f"{path} line {i}") from err
    return records


def read_outcome_bag(path: str | Path, topic: str = OUTCOME_TOPIC) -> list[EpisodeRecord]:
    """Every record published on ``topic``; a bad or truncated bag or a bad message is a clear error."""
    any_reader, _, _, typestore = _rosbags()
    path = Path(path)
    records = []
    try:
        with any_reader([path], default_typestore=typestore) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                topics = sorted({c.topic for c in reader.connections})
                raise ValueError(f"bag {path} has no {topic} topic; its topics: {topics}")
            bad = [c.msgtype for c in conns if c.msgtype != _STRING]
            if bad:
                raise ValueError(f"bag {path}: {topic} must carry {_STRING}, found {bad[0]}")
            for i, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
                text = reader.deserialize(raw, conn.msgtype).data
                try:
                    records.append(from_json(text))
                except RecordError as err:
                    raise RecordError(
                        err.field, err.value, err.reason, f"{path} {topic} message {i}"
                    ) from err
    except (RecordError, ValueError):
        raise
    except Exception as err:  # rosbags raises its own error types for unreadable or truncated bags
        raise ValueError(f"cannot read bag {path}: {type(err).__name__}: {err}") from err
    return records


def write_outcome_bag(path: str | Path, records: Iterable[EpisodeRecord], topic: str = OUTCOME_TOPIC,
                      storage: str = "mcap", start_ns: int = 1) -> Path:  # fmt: skip
    """Write records as std_msgs/String JSON messages on ``topic`` into a new bag folder (for tests, tools)."""
    _, writer_cls, plugin, typestore = _rosbags()
    plugins = {"mcap": plugin.MCAP, "sqlite3": plugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
    string = typestore.types[_STRING]
    with writer_cls(path, version=9, storage_plugin=plugins[storage]) as writer:
        conn = writer.add_connection(topic, _STRING, typestore=typestore)
        for i, rec in enumerate(records):
            writer.write(
                conn, start_ns + i * 1_000_000, typestore.serialize_cdr(string(data=to_json(rec)), _STRING)
            )
    return Path(path)
