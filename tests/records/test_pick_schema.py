"""Record schema versions 2 and 3: the pick-and-place outcome (events, final object poses) and the gripper
commands sent round-trip through JSON and a records folder; version 1 and 2 records still read; a bad pick or
gripper field is one line naming it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ast_robot.records import (
    SCHEMA_VERSION,
    PickOutcome,
    RecordError,
    from_json,
    read_records,
    to_json,
    write_records,
)
from tests.gap.helpers import make_record

PICK = PickOutcome(events=(("grasp", 0.6), ("lift", 0.68), ("place", 1.2)), object_positions=((0.5, 0.1, 0.02),
                   (0.3, -0.1, 0.02)), target_object=0, target_distance=0.003, pose_source="tracker")  # fmt: skip


def test_pick_outcome_round_trips_through_json_and_a_folder(tmp_path):
    rec = make_record(seed=1, source="real", pick=PICK)
    assert SCHEMA_VERSION >= 3 and rec.schema_version == SCHEMA_VERSION
    assert from_json(to_json(rec)).pick == PICK
    write_records(tmp_path, [rec, make_record(seed=2)])
    back = read_records(tmp_path)
    assert back[0].pick == PICK and back[0].pick.times("lift") == [0.68] and back[1].pick is None


def test_version_1_records_still_read_and_carry_no_pick():
    data = {k: v for k, v in json.loads(to_json(make_record())).items() if k != "pick"}
    old = from_json(json.dumps({**data, "schema_version": 1}))
    assert old.schema_version == 1 and old.pick is None and "pick" not in old.to_dict()
    with pytest.raises(RecordError, match="'pick': is a schema version 2 field"):
        from_json(json.dumps({**data, "schema_version": 1, "pick": PICK.to_dict()}))


def test_gripper_commands_round_trip_and_version_2_records_still_read(tmp_path):
    rec = make_record(seed=1, source="real", pick=PICK, gripper_commands=((0, 0.085), (3, 0.0012)))
    assert from_json(to_json(rec)).gripper_commands == ((0, 0.085), (3, 0.0012))
    write_records(tmp_path, [rec, make_record(seed=2)])
    back = read_records(tmp_path)
    assert back[0].gripper_commands == ((0, 0.085), (3, 0.0012)) and back[1].gripper_commands is None
    data = {k: v for k, v in json.loads(to_json(make_record(source="real", pick=PICK))).items() if k != "gripper_commands"}
    old = from_json(json.dumps({**data, "schema_version": 2}))
    assert old.schema_version == 2 and old.pick == PICK and "gripper_commands" not in old.to_dict()
    with pytest.raises(RecordError, match="'gripper_commands': is a schema version 3 field"):
        from_json(json.dumps({**data, "schema_version": 2, "gripper_commands": [[0, 0.08]]}))


@pytest.mark.parametrize("commands,field,reason", [
    ([[0, 0.08], [0, 0.07]], "gripper_commands[1].step", "must increase"),
    ([[99, 0.08]], "gripper_commands[0].step", "< the episode's"),
    ([[0, -0.01]], "gripper_commands[0].width", ">= 0.0"),
    ([[0.5, 0.08]], "gripper_commands[0].step", "must be an integer"),
    ([[0]], "gripper_commands[0]", "[control step, width m]"),
    ({"0": 0.08}, "gripper_commands", "must be a list"),
])  # fmt: skip
def test_bad_gripper_commands_name_the_field(commands, field, reason):
    data = json.loads(to_json(make_record(source="real", pick=PICK)))
    with pytest.raises(RecordError, match=rf"'{re.escape(field)}'.*{re.escape(reason)}"):
        from_json(json.dumps({**data, "gripper_commands": commands}))


@pytest.mark.parametrize("change,field,reason", [
    ({"events": [["wave", 0.1]]}, "pick.events[0]", "name in"),
    ({"events": [["lift", 0.5], ["grasp", 0.2]]}, "pick.events[1].time", "must not be before"),
    ({"pose_source": "none"}, "pick.object_positions", "null exactly when pose_source is 'none'"),
    ({"pose_source": "guess"}, "pick.pose_source", "must be one of"),
    ({"target_distance": None}, "pick.target_distance", "null exactly when"),
    ({"target_object": 5}, "pick.target_object", "must index the 2 object positions"),
    ({"object_positions": [[0.1, 0.2]]}, "pick.object_positions", "shape"),
    ({"colour": "red"}, "pick.colour", "unknown field"),
])  # fmt: skip
def test_bad_pick_fields_name_the_field(change, field, reason):
    data = json.loads(to_json(make_record(source="real", pick=PICK)))
    with pytest.raises(RecordError, match=rf"'{re.escape(field)}'.*{re.escape(reason)}"):
        from_json(json.dumps({**data, "pick": {**PICK.to_dict(), **change}}))


def test_poses_without_a_target_have_no_target_distance():
    """A table without its episode sheet: the cubes were measured, but which one was the target is unknown."""
    untargeted = PickOutcome(object_positions=((0.5, 0.1, 0.02),), pose_source="tracker")
    assert from_json(to_json(make_record(source="real", pick=untargeted))).pick == untargeted


def test_sim_events_must_lie_within_the_episode():
    late = PickOutcome(events=(("grasp", 99.0),), object_positions=((0.5, 0.1, 0.02),), target_object=0,
                       target_distance=0.0, pose_source="sim")  # fmt: skip
    with pytest.raises(RecordError, match="pick.events"):
        make_record(pick=late)


def test_bag_writer_thins_a_topic_to_its_max_rate_and_leaves_the_others(tmp_path):
    pytest.importorskip("rosbags")
    from ast_robot.records.bag import BagWriter, read_bag_images, read_outcome_bag
    from ast_robot.records.stream import IMAGE, STRING

    with BagWriter(tmp_path / "bag", {"/ast/outcome": STRING, "/camera/image_raw": IMAGE},
                   max_rate_hz={"/camera/image_raw": 2.0}) as bag:  # fmt: skip
        image = bag.typestore.types[IMAGE]
        for k in range(31):  # 3 s of a 10 Hz camera, each frame's pixels = its index
            t_ns = 1_000_000_000 + k * 100_000_000
            pixels = np.full(4 * 6 * 3, k, dtype=np.uint8)
            msg = image(header=bag.typestore.types["std_msgs/msg/Header"](
                stamp=bag.typestore.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""),
                height=4, width=6, encoding="rgb8", is_bigendian=0, step=18, data=pixels)  # fmt: skip
            bag.write("/camera/image_raw", bag.typestore.serialize_cdr(msg, IMAGE), t_ns)
        for k in range(3):  # outcome records are never thinned
            bag.write_record(make_record(seed=k, source="real", pick=PICK), 1_000_000_000 + k)
        assert bag.skipped == {"/ast/outcome": 0, "/camera/image_raw": 24}
    frames = read_bag_images(tmp_path / "bag")
    assert [int(f[0, 0, 0]) for _, f in frames] == [0, 5, 10, 15, 20, 25, 30] and frames[0][1].shape == (4, 6, 3)
    assert [r.pick for r in read_outcome_bag(tmp_path / "bag")] == [PICK] * 3
    with pytest.raises(ValueError, match=r"max_rate_hz\['/camera/image_raw'\]: expected messages per second > 0"):
        BagWriter(tmp_path / "bag2", {"/camera/image_raw": IMAGE}, max_rate_hz={"/camera/image_raw": 0})
