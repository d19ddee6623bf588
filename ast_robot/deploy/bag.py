"""Writing ROS 2 bags (MCAP or sqlite3) with rosbags, from serialized CDR messages. No rclpy here.

The recorder node hands in the raw CDR bytes it received (rclpy's ``raw=True`` subscriptions), so
nothing is decoded and re-encoded on the way to disk. Bags are version 8 with message definitions
from rosbags' Kilted typestore, readable by ``ros2 bag`` and by ``ast_robot.gap.bags``.

A bag is only readable once :meth:`BagWriter.close` has written its metadata: a recorder killed before that
(SIGKILL, power loss) leaves no readable bag. So each outcome record is also appended to a journal in the
bag folder (:data:`JOURNAL_FILE`, one JSON record per line, flushed and fsynced per record), which
``ast_robot.gap.bags.load_episodes`` reads when the bag was never closed. A clean close removes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

OUTCOME_TOPIC = "/ast/outcome"
DEFAULT_TOPICS = {OUTCOME_TOPIC: "std_msgs/msg/String", "/joint_states": "sensor_msgs/msg/JointState"}
JOURNAL_FILE = "outcomes.journal.jsonl"  # the crash-safe copy of the outcome records, until close()


def _rosbags() -> tuple[Any, Any, Any]:
    try:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError(f'recording bags needs rosbags ({err}); pip install "ast-robot[ros]"') from err
    return Writer, StoragePlugin, get_typestore(Stores.ROS2_KILTED)


class BagWriter:
    """A bag folder opened for writing; call :meth:`write` per message and :meth:`close` at the end."""

    def __init__(self, path: str | Path, topics: dict[str, str] | None = None, storage: str = "mcap") -> None:
        writer_cls, plugin, self.typestore = _rosbags()
        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage: {storage!r} is not a bag format; use 'mcap' or 'sqlite3'")
        self.path = Path(path)
        if self.path.exists():
            raise ValueError(f"out: bag folder {self.path} exists already; choose a new folder")
        self.topics = dict(topics or DEFAULT_TOPICS)
        for topic, msgtype in self.topics.items():
            if msgtype not in self.typestore.types:
                raise ValueError(f"topics[{topic!r}]: unknown message type {msgtype!r}")
        self._writer = writer_cls(self.path, version=8,
                                  storage_plugin=plugin.MCAP if storage == "mcap" else plugin.SQLITE3)  # fmt: skip
        self._writer.open()
        self._conns = {t: self._writer.add_connection(t, m, typestore=self.typestore) for t, m in self.topics.items()}
        self.counts = dict.fromkeys(self.topics, 0)
        journaled = self.topics.get(OUTCOME_TOPIC) == "std_msgs/msg/String"
        self._journal = open(self.path / JOURNAL_FILE, "a", encoding="utf-8") if journaled else None

    def write(self, topic: str, cdr: bytes, stamp_ns: int) -> None:
        """Append one serialized (CDR) message received at ``stamp_ns`` (ns since the epoch)."""
        self._writer.write(self._conns[topic], int(stamp_ns), cdr)
        self.counts[topic] += 1
        if topic == OUTCOME_TOPIC and self._journal is not None:
            self._append_journal(self.typestore.deserialize_cdr(cdr, self.topics[topic]).data)

    def _append_journal(self, text: str) -> None:
        # One record per line; the outcome JSON is one line already (escaped newlines stay escaped).
        self._journal.write(text.replace("\n", " ") + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def close(self) -> None:
        """Finish the bag (writes the metadata file, then drops the journal); safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
            (self.path / JOURNAL_FILE).unlink()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
