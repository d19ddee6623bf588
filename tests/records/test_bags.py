"""Real records from bags and folders: round trip, malformed and partial bags, wrong topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rosbags")

from ast_robot.config.deploy import RosNames  # noqa: E402
from ast_robot.records import (  # noqa: E402
    RecordError,
    load_episodes,  # noqa: E402
    to_json,
    write_records,
)
from ast_robot.records.bag import BagWriter, read_outcome_bag, write_outcome_bag  # noqa: E402
from ast_robot.records.stream import OUTCOME_QOS  # noqa: E402
from tests.gap.helpers import make_record  # noqa: E402

OUTCOME_TOPIC = RosNames().outcome


def _real(n=3):
    return [make_record(seed=i, source="real", success=i % 2 == 0) for i in range(n)]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trip(tmp_path, storage):
    recs = _real()
    write_outcome_bag(tmp_path / "bag", recs, storage=storage)
    back = load_episodes(tmp_path / "bag")
    assert [r.seed for r in back] == [0, 1, 2]
    assert [r.success for r in back] == [True, False, True]
    assert (back[1].actions == recs[1].actions).all()


def test_records_folder_is_accepted_too(tmp_path):
    write_records(tmp_path / "real", _real(2))
    assert len(load_episodes(tmp_path / "real")) == 2


def test_bag_without_the_outcome_topic_lists_its_topics(tmp_path):
    write_outcome_bag(tmp_path / "bag", _real(1), topic="/other")
    with pytest.raises(ValueError, match=r"no /ast/outcome topic \(its topics: \['/other'\]\)"):
        read_outcome_bag(tmp_path / "bag")


def test_bad_message_names_the_message_and_field(tmp_path, monkeypatch):
    import ast_robot.records.bag as bags

    good = to_json(make_record(seed=0, source="real"))
    bad = json.dumps({**json.loads(good), "schema_version": 7})
    texts = iter([good, bad])
    monkeypatch.setattr(bags, "to_json", lambda rec: next(texts))
    write_outcome_bag(tmp_path / "bag", _real(2))
    with pytest.raises(RecordError, match=rf"{OUTCOME_TOPIC} message 1: .*'schema_version'.*unknown schema"):
        read_outcome_bag(tmp_path / "bag")


def test_truncated_bag_is_a_clear_error(tmp_path):
    write_outcome_bag(tmp_path / "bag", _real(3))
    mcap = next((tmp_path / "bag").glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read bag"):
        read_outcome_bag(tmp_path / "bag")


def test_garbage_and_missing_paths(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(ValueError, match="cannot read bag"):
        load_episodes(tmp_path / "junk")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_episodes(tmp_path / "missing")


def test_bag_cut_off_before_its_metadata_was_written(tmp_path):
    write_outcome_bag(tmp_path / "bag", _real(2))
    (tmp_path / "bag" / "metadata.yaml").unlink()  # a recorder killed mid-run leaves no metadata
    with pytest.raises(ValueError, match="cannot read bag"):
        load_episodes(tmp_path / "bag")


def test_reads_recorder_bags_with_other_topics(tmp_path):
    """The recorder's writer (outcomes with /joint_states beside) and this reader agree."""
    recs = _real(2)
    with BagWriter(tmp_path / "bag") as bag:
        for i, rec in enumerate(recs):
            bag.write_record(rec, 10 + i)
    assert sorted(bag.counts) == [OUTCOME_TOPIC, "/joint_states"]
    assert [r.seed for r in load_episodes(tmp_path / "bag")] == [0, 1]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_still_reads_version_8_bags(tmp_path, storage):
    """Bags recorded before the move were version 8 (rosbags' writer, no QoS): they still read."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    string = store.types["std_msgs/msg/String"]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(tmp_path / "bag", version=8, storage_plugin=plugin) as writer:
        conn = writer.add_connection(OUTCOME_TOPIC, "std_msgs/msg/String", typestore=store)
        for i, rec in enumerate(_real(2)):
            writer.write(conn, 10 + i, store.serialize_cdr(string(data=to_json(rec)), "std_msgs/msg/String"))
    assert yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["version"] == 8
    assert [r.seed for r in load_episodes(tmp_path / "bag")] == [0, 1]


def _topic_metadata(bag: Path) -> tuple[dict, dict]:
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return info, {t["topic_metadata"]["name"]: t["topic_metadata"] for t in info["topics_with_message_count"]}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_metadata_names_the_distribution_and_each_topics_qos(tmp_path, storage):
    """As Kilted's rosbag2 writes a bag: version 9, ros_distro kilted (not rosbags), offered QoS per topic, so a
    player replays the outcome topic transient-local, as the policy node publishes it."""
    from rosbags.interfaces import QosDurability, QosReliability
    from rosbags.rosbag2 import Reader

    with BagWriter(tmp_path / "bag", storage=storage) as bag:
        bag.write_record(make_record(seed=0, source="real"), 1)
    info, topics = _topic_metadata(tmp_path / "bag")
    assert info["version"] == 9 and info["ros_distro"] == "kilted"
    outcome = topics[OUTCOME_TOPIC]["offered_qos_profiles"]
    assert [(q["durability"], q["reliability"], q["history"], q["depth"]) for q in outcome] == [
        ("transient_local", "reliable", "keep_last", OUTCOME_QOS.depth)]
    assert [q["durability"] for q in topics["/joint_states"]["offered_qos_profiles"]] == ["volatile"]
    with Reader(tmp_path / "bag") as reader:  # a third-party reader sees the same
        assert reader.ros_distro == "kilted"
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    assert [(q.durability, q.reliability) for q in qos[OUTCOME_TOPIC]] == [
        (QosDurability.TRANSIENT_LOCAL, QosReliability.RELIABLE)]
    stored = next(p for p in (tmp_path / "bag").iterdir() if p.suffix in (".mcap", ".db3"))
    assert b"ros_distro: kilted" in stored.read_bytes() and b"ros_distro: rosbags" not in stored.read_bytes()


def test_null_case_metadata_of_a_plain_rosbags_bag_says_rosbags(tmp_path):
    """The check above can fail: rosbags' own writer names no distribution and records no QoS."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection(OUTCOME_TOPIC, "std_msgs/msg/String", typestore=get_typestore(Stores.ROS2_KILTED))
    info, topics = _topic_metadata(tmp_path / "bag")
    assert info["ros_distro"] == "rosbags" and topics[OUTCOME_TOPIC]["offered_qos_profiles"] == []
