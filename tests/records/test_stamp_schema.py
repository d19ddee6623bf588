"""Record schema version 4: the joint states' stamps (``joint_stamps``, the robot's clock) round-trip through
JSON and a records folder; version 3 records still read and refuse the field in one line naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ast_robot.records import SCHEMA_VERSION, RecordError, from_json, read_records, to_json, write_records
from tests.gap.helpers import make_record

STAMPS = [100.0, 100.04, 100.08, 100.08, 100.16, 100.2]  # a state may repeat on wall clock: non-decreasing


def test_joint_stamps_round_trip_through_json_and_a_folder(tmp_path):
    rec = make_record(seed=1, source="real", joint_stamps=STAMPS)
    assert SCHEMA_VERSION >= 4 and rec.schema_version == SCHEMA_VERSION
    assert np.array_equal(from_json(to_json(rec)).joint_stamps, STAMPS)
    write_records(tmp_path, [rec, make_record(seed=2)])
    back = read_records(tmp_path)
    assert np.array_equal(back[0].joint_stamps, STAMPS) and back[1].joint_stamps is None


def test_version_3_records_still_read_and_refuse_stamps_in_one_line():
    data = {k: v for k, v in json.loads(to_json(make_record())).items() if k != "joint_stamps"}
    old = from_json(json.dumps({**data, "schema_version": 3}))
    assert old.schema_version == 3 and old.joint_stamps is None and "joint_stamps" not in old.to_dict()
    with pytest.raises(RecordError, match="'joint_stamps': is a schema version 4 field") as err:
        from_json(json.dumps({**data, "schema_version": 3, "joint_stamps": STAMPS}))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("stamps", "reason"), [
    (STAMPS[:-1], "one stamp per joint_positions row"),
    ([100.0, 100.04, 100.0, 100.12, 100.16, 100.2], "non-decreasing"),
    ([100.0, float("nan"), 100.08, 100.12, 100.16, 100.2], "finite"),
])  # fmt: skip
def test_bad_stamps_are_one_line_naming_the_field(stamps, reason):
    with pytest.raises(RecordError, match=f"'joint_stamps': .*{reason}") as err:
        make_record(source="real", joint_stamps=stamps)
    assert "\n" not in str(err.value)
