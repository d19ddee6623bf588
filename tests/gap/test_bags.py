"""Real records from bags and folders: round trip, malformed and partial bags, wrong topics."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rosbags")

from ast_robot.gap.bags import OUTCOME_TOPIC, load_episodes, read_outcome_bag, write_outcome_bag  # noqa: E402
from ast_robot.gap.outcomes import RecordError, to_json, write_records  # noqa: E402
from tests.gap.helpers import make_record  # noqa: E402


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
    import ast_robot.gap.bags as bags

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


def test_reads_bags_from_the_deploy_recorder_with_other_topics(tmp_path):
    """The recorder (ast_robot.deploy.bag, version-8 bags with /joint_states beside) and this reader agree."""
    from rosbags.typesys import Stores, get_typestore

    from ast_robot.deploy.bag import BagWriter

    store = get_typestore(Stores.ROS2_KILTED)
    string = store.types["std_msgs/msg/String"]
    recs = _real(2)
    with BagWriter(tmp_path / "bag") as bag:
        for i, rec in enumerate(recs):
            bag.write(
                OUTCOME_TOPIC, store.serialize_cdr(string(data=to_json(rec)), "std_msgs/msg/String"), 10 + i
            )
    assert [r.seed for r in load_episodes(tmp_path / "bag")] == [0, 1]
