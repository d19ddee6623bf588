"""Real episode records from a ROS 2 bag of ``/ast/outcome`` (std_msgs/String, one JSON record each),
or from a records folder (``records.jsonl`` + arrays) written by :func:`ast_robot.gap.outcomes.write_records`.

Bags are read with `rosbags` (no ROS install needed), imported lazily: it is part of the `ros` extra.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from ast_robot.deploy.bag import JOURNAL_FILE
from ast_robot.fileio import BadFile, describe, reading
from ast_robot.gap.outcomes import RECORDS_FILE, EpisodeRecord, RecordError, from_json, read_records, to_json

OUTCOME_TOPIC = "/ast/outcome"
_STRING = "std_msgs/msg/String"
_INSTALL = 'reading bags needs rosbags: pip install "ast-robot[ros]"'


def _rosbags():
    try:
        from rosbags.rosbag2 import Reader, StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return (
        Reader,
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
    with reading(path, "one JSON outcome record per line (UTF-8 text)"):
        text = path.read_bytes().decode("utf-8")
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


BAG_EXPECTED = f"a ROS 2 bag (folder with metadata.yaml, MCAP or sqlite3) with {_STRING} outcome records"


def read_outcome_bag(path: str | Path, topic: str = OUTCOME_TOPIC) -> list[EpisodeRecord]:
    """Every record published on ``topic``; a bad or truncated bag or a bad message is one clear line.

    Messages are decoded with our own ROS 2 type store only: the message definitions a bag carries are
    never registered (rosbags turns registered definitions into Python source and runs it)."""
    reader_cls, _, _, typestore = _rosbags()
    path = Path(path)
    records = []
    try:
        with reader_cls(path) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                topics = sorted({c.topic for c in reader.connections})
                raise BadFile(path, f"no {topic} topic (its topics: {topics})", BAG_EXPECTED)
            bad = [c.msgtype for c in conns if c.msgtype != _STRING]
            if bad:
                raise BadFile(path, f"{topic} carries {bad[0]}", BAG_EXPECTED)
            for i, (_conn, _, raw) in enumerate(reader.messages(connections=conns)):
                text = typestore.deserialize_cdr(raw, _STRING).data
                try:
                    records.append(from_json(text))
                except RecordError as err:
                    raise RecordError(
                        err.field, err.value, err.reason, f"{path} {topic} message {i}"
                    ) from err
    except (RecordError, BadFile):
        raise
    except Exception as err:  # rosbags raises its own error types for unreadable or truncated bags
        raise BadFile(path, f"cannot read bag ({describe(err)})", BAG_EXPECTED) from err
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
