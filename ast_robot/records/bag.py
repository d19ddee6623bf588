"""ROS 2 bags of episode records: the project's one bag writer and one bag reader. No rclpy here.

Writing (:class:`BagWriter`): bag version 9 (as Kilted's rosbag2 writes it), MCAP or sqlite3, message
definitions from rosbags' Kilted typestore. The metadata names the ROS 2 distribution (:data:`ROS_DISTRO`;
rosbags alone would write "rosbags") and each topic's offered QoS (:mod:`ast_robot.records.stream`), so
``ros2 bag play`` replays the outcome topic transient-local. The recorder node hands in the raw CDR bytes it
received (rclpy's ``raw=True`` subscriptions): nothing is decoded and re-encoded on the way to disk.

A bag is only readable once :meth:`BagWriter.close` has written its metadata: a recorder killed before that
(SIGKILL, power loss) leaves no readable bag. So each outcome record is also appended to a journal in the
bag folder (:data:`JOURNAL_FILE`, one JSON record per line, flushed and fsynced per record), which
:func:`ast_robot.records.load.load_episodes` reads when the bag was never closed. A clean close removes it.

Reading (:func:`read_outcome_bag`): versions 8 (this project's recorder before the move) and 9, MCAP or
sqlite3. rosbags is part of the `ros` extra and imported lazily.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ast_robot.config.deploy import RosNames
from ast_robot.fileio import BadFile, atomic_write_text, describe, reading
from ast_robot.records.schema import EpisodeRecord, RecordError, from_json, to_json
from ast_robot.records.stream import IMAGE, JOINT_STATE, OUTCOME_QOS, STATE_QOS, STRING, TopicQos

# The distribution of the ROS 2 wheels we deploy with (rclpy 9.x is Kilted); the typestore below matches it.
ROS_DISTRO = "kilted"
BAG_VERSION = 9  # what Kilted's rosbag2 writes; the reader also reads version 8
JOURNAL_FILE = "outcomes.journal.jsonl"  # the crash-safe copy of the outcome records, until close()
BAG_EXPECTED = f"a ROS 2 bag (folder with metadata.yaml, MCAP or sqlite3) with {STRING} outcome records"
_NAMES = RosNames()


def recorded_topics(names: RosNames = _NAMES, joint_states: bool = True, camera: bool = False) -> dict[str, str]:
    """What ``ast-robot record`` writes: topic -> message type (the outcome stream, the joint states, and with
    ``camera`` the camera images, the scene camera's and the wrist camera's where its topic is named, which the
    recorder thins to its ``--camera-rate``)."""
    cameras = {t: IMAGE for t in (names.camera, names.wrist_camera) if t} if camera else {}
    return {names.outcome: STRING, **({names.joint_states: JOINT_STATE} if joint_states else {}), **cameras}


def _rosbags() -> Any:
    try:
        import rosbags.interfaces as interfaces
        from rosbags.rosbag2 import Reader, StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError(f'ROS 2 bags need rosbags ({err}); pip install "ast-robot[ros]"') from err
    return Reader, Writer, StoragePlugin, interfaces, get_typestore(Stores.ROS2_KILTED)


def _offered(qos: TopicQos, interfaces: Any) -> Any:
    """rosbag2's offered QoS profile: ours, with rmw's defaults (infinite durations, automatic liveliness)."""
    infinite = interfaces.QosTime(9223372036, 854775807)  # RMW_DURATION_INFINITE, as rosbag2 writes it
    return interfaces.Qos(interfaces.QosHistory.KEEP_LAST, qos.depth,
                          interfaces.QosReliability[qos.reliability.upper()],
                          interfaces.QosDurability[qos.durability.upper()], infinite, infinite,
                          interfaces.QosLiveliness.AUTOMATIC, infinite, False)  # fmt: skip


class BagWriter:
    """A bag folder opened for writing; call :meth:`write` per message and :meth:`close` at the end.

    ``qos``: each topic's offered QoS (default: :data:`OUTCOME_QOS` for ``outcome_topic``, :data:`STATE_QOS`
    for the others). ``max_rate_hz``: topic -> at most this many messages a second are written (by their
    stamps; the rest are dropped and counted in ``skipped``): camera images at e.g. 2 Hz, not at 30."""

    def __init__(self, path: str | Path, topics: Mapping[str, str] | None = None, storage: str = "mcap",
                 qos: Mapping[str, TopicQos] | None = None, outcome_topic: str = _NAMES.outcome,
                 max_rate_hz: Mapping[str, float] | None = None) -> None:  # fmt: skip
        _, writer_cls, plugin, interfaces, self.typestore = _rosbags()
        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage: {storage!r} is not a bag format; use 'mcap' or 'sqlite3'")
        self.path, self.outcome_topic = Path(path), outcome_topic
        self._min_gap_ns = _min_gaps(max_rate_hz or {}, topics)
        if self.path.exists():
            raise ValueError(f"out: bag folder {self.path} exists already; choose a new folder")
        self.topics = dict(recorded_topics() if topics is None else topics)
        for topic, msgtype in self.topics.items():
            if msgtype not in self.typestore.types:
                raise ValueError(f"topics[{topic!r}]: unknown message type {msgtype!r}")
        self.qos = {t: OUTCOME_QOS if t == outcome_topic else STATE_QOS for t in self.topics} | dict(qos or {})
        self._writer = writer_cls(self.path, version=BAG_VERSION,
                                  storage_plugin=plugin.MCAP if storage == "mcap" else plugin.SQLITE3)  # fmt: skip
        self._writer.open()
        self._conns = {t: self._writer.add_connection(t, m, typestore=self.typestore,
                                                      offered_qos_profiles=[_offered(self.qos[t], interfaces)])
                       for t, m in self.topics.items()}  # fmt: skip
        self.counts = dict.fromkeys(self.topics, 0)
        self.skipped = dict.fromkeys(self.topics, 0)  # dropped by max_rate_hz
        self._last_ns: dict[str, int] = {}
        journaled = self.topics.get(outcome_topic) == STRING
        self._journal = open(self.path / JOURNAL_FILE, "a", encoding="utf-8") if journaled else None

    def write(self, topic: str, cdr: bytes, stamp_ns: int) -> bool:
        """Append one serialized (CDR) message received at ``stamp_ns`` (ns since the epoch); False when the
        topic's ``max_rate_hz`` drops it (less than one period after the last one written)."""
        gap = self._min_gap_ns.get(topic)
        if gap is not None:
            last = self._last_ns.get(topic)
            if last is not None and stamp_ns - last < gap:
                self.skipped[topic] += 1
                return False
            self._last_ns[topic] = int(stamp_ns)
        self._writer.write(self._conns[topic], int(stamp_ns), cdr)
        self.counts[topic] += 1
        if topic == self.outcome_topic and self._journal is not None:
            self._append_journal(self.typestore.deserialize_cdr(cdr, STRING).data)
        return True

    def write_record(self, record: EpisodeRecord, stamp_ns: int) -> None:
        """Append one episode record on the outcome topic, as the policy node publishes it."""
        message = self.typestore.types[STRING](data=to_json(record))
        self.write(self.outcome_topic, self.typestore.serialize_cdr(message, STRING), stamp_ns)

    def _append_journal(self, text: str) -> None:
        # One record per line; the outcome JSON is one line already (escaped newlines stay escaped).
        self._journal.write(text.replace("\n", " ") + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def close(self) -> None:
        """Finish the bag (writes the metadata, then drops the journal); safe to call twice."""
        if self._writer is not None:
            storage = self._writer.storage
            storage_close = storage.close  # the storage keeps a copy of the metadata (MCAP record, sqlite table)
            storage.close = lambda version, metadata: storage_close(version, _with_distro(metadata))
            self._writer.close()
            self._writer = None
            meta = self.path / "metadata.yaml"
            atomic_write_text(meta, _with_distro(meta.read_text(encoding="utf-8")))
        if self._journal is not None:
            self._journal.close()
            self._journal = None
            (self.path / JOURNAL_FILE).unlink()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _min_gaps(max_rate_hz: Mapping[str, float], topics: Mapping[str, str] | None) -> dict[str, int]:
    """topic -> least time (ns) between written messages; ValueError naming a bad rate or unknown topic."""
    gaps = {}
    for topic, hz in max_rate_hz.items():
        if topics is not None and topic not in topics:
            raise ValueError(f"max_rate_hz[{topic!r}]: not a recorded topic ({sorted(topics)})")
        if not (isinstance(hz, (int, float)) and hz > 0):
            raise ValueError(f"max_rate_hz[{topic!r}]: expected messages per second > 0, got {hz!r}")
        gaps[topic] = round(1e9 / hz)
    return gaps


def read_bag_topics(path: str | Path) -> set[str]:
    """The topics a bag holds messages of (connections)."""
    reader_cls = _rosbags()[0]
    with reader_cls(Path(path)) as reader:
        return {c.topic for c in reader.connections}


def read_bag_images(path: str | Path, topic: str = _NAMES.camera) -> list[tuple[int, Any]]:
    """(bag time ns, image (H, W, C) uint8 array) of every camera frame on ``topic``; BadFile (one line) for
    an unreadable bag, a bag without the topic, or a frame whose size does not match its data."""
    return [(t, image) for t, _stamp, image in read_bag_frames(path, topic)]


def read_bag_frames(path: str | Path, topic: str = _NAMES.camera) -> list[tuple[int, int, Any]]:
    """(bag time ns, header stamp ns, image) of every camera frame on ``topic``: the bag time is when the
    recorder received the frame, the header stamp when the camera took it (what to match poses by)."""
    import numpy as np

    reader_cls, _, _, _, typestore = _rosbags()
    path = Path(path)
    expected = f"a ROS 2 bag with {IMAGE} frames on {topic}"
    try:
        with reader_cls(path) as reader:
            conns = [c for c in reader.connections if c.topic == topic and c.msgtype == IMAGE]
            if not conns:
                raise BadFile(path, f"no {IMAGE} on {topic} (its topics: {sorted({c.topic for c in reader.connections})})",
                              expected)  # fmt: skip
            frames = []
            for _conn, stamp, raw in reader.messages(connections=conns):
                msg = typestore.deserialize_cdr(raw, IMAGE)
                rows = np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
                channels = msg.step // msg.width
                taken = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
                frames.append((int(stamp), taken, rows[:, : msg.width * channels].reshape(msg.height, msg.width, channels)))
    except BadFile:
        raise
    except Exception as err:  # rosbags' own errors, or a frame whose data does not fit its size
        raise BadFile(path, f"cannot read camera frames ({describe(err)})", expected) from err
    return frames


def _with_distro(metadata: str) -> str:
    """rosbags writes ``ros_distro: rosbags``; a bag of ours names the ROS 2 distribution it was made with.

    Never raises: a rosbags that writes the line differently leaves it as it is (tests/records/test_bags.py
    notices), rather than losing the bag at close."""
    return metadata.replace("ros_distro: rosbags", f"ros_distro: {ROS_DISTRO}")


def write_outcome_bag(path: str | Path, records: Iterable[EpisodeRecord], topic: str = _NAMES.outcome,
                      storage: str = "mcap", start_ns: int = 1) -> Path:  # fmt: skip
    """A new bag of ``records`` on ``topic``, 1 ms apart (for tests and tools); the recorder's writer."""
    with BagWriter(path, {topic: STRING}, storage, outcome_topic=topic) as bag:
        for i, rec in enumerate(records):
            bag.write_record(rec, start_ns + i * 1_000_000)
    return Path(path)


def read_outcome_bag(path: str | Path, topic: str = _NAMES.outcome) -> list[EpisodeRecord]:
    """Every record published on ``topic``; a bad or truncated bag or a bad message is one clear line.

    Messages are decoded with our own ROS 2 type store only: the message definitions a bag carries are
    never registered (rosbags turns registered definitions into Python source and runs it)."""
    reader_cls, _, _, _, typestore = _rosbags()
    path = Path(path)
    records = []
    try:
        with reader_cls(path) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                topics = sorted({c.topic for c in reader.connections})
                raise BadFile(path, f"no {topic} topic (its topics: {topics})", BAG_EXPECTED)
            if bad := [c.msgtype for c in conns if c.msgtype != STRING]:
                raise BadFile(path, f"{topic} carries {bad[0]}", BAG_EXPECTED)
            for i, (_conn, _, raw) in enumerate(reader.messages(connections=conns)):
                text = typestore.deserialize_cdr(raw, STRING).data
                try:
                    records.append(from_json(text))
                except RecordError as err:
                    raise RecordError(err.field, err.value, err.reason, f"{path} {topic} message {i}") from err
    except (RecordError, BadFile):
        raise
    except Exception as err:  # rosbags raises its own error types for unreadable or truncated bags
        raise BadFile(path, f"cannot read bag ({describe(err)})", BAG_EXPECTED) from err
    return records


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
