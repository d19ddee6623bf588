"""Episode-record schema: validation, JSON round trip, folder round trip and atomicity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ast_robot.gap.outcomes import (
    RECORDS_FILE,
    EpisodeRecord,
    RecordError,
    from_json,
    read_records,
    to_json,
    write_records,
)
from tests.gap.helpers import make_record


def _same(a: EpisodeRecord, b: EpisodeRecord) -> None:
    assert a.to_dict(include_arrays=False) == b.to_dict(include_arrays=False)
    for name in ("actions", "joint_positions"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    if a.joint_targets is None:
        assert b.joint_targets is None
    else:
        np.testing.assert_array_equal(a.joint_targets, b.joint_targets)


def test_json_round_trip_keeps_every_field():
    rec = make_record(seed=3)
    _same(rec, from_json(to_json(rec)))
    failed = make_record(seed=4, success=False, source="real", joint_targets=None)
    _same(failed, from_json(to_json(failed)))


def test_folder_round_trip_and_stale_arrays_removed(tmp_path):
    first = [make_record(seed=i, success=i % 2 == 0) for i in range(4)]
    write_records(tmp_path, first)
    second = [make_record(seed=10 + i, joint_targets=None) for i in range(3)]
    write_records(tmp_path, second)
    back = read_records(tmp_path)
    assert len(back) == 3
    for a, b in zip(second, back):
        _same(a, b)
    assert len(list(tmp_path.glob("arrays-*.npz"))) == 1
    assert all(
        "actions" not in json.loads(line) for line in (tmp_path / RECORDS_FILE).read_text().splitlines()
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("schema_version", 99, "unknown schema version"),
        ("source", "lab", "must be one of"),
        ("seed", -1, "must be >= 0"),
        ("final_error", float("nan"), "must be finite"),
        ("time_to_success", None, "must be a number of seconds"),
        ("robot", "", "non-empty string"),
        ("control_dt", 0.0, "must be > 0"),
        ("joint_positions", np.zeros((5, 6)), r"T\+1 = 6 rows"),
        ("randomization", {"friction": "high"}, "must be a number"),
    ],
)
def test_invalid_fields_are_rejected_with_field_and_reason(field, value, reason):
    with pytest.raises(RecordError, match=reason) as info:
        make_record(**{field: value})
    assert info.value.field.startswith(field)


def test_real_records_must_not_carry_randomization():
    with pytest.raises(RecordError, match="must be empty for real"):
        make_record(source="real", randomization={"friction": 1.0})


def test_unknown_version_and_unknown_field_in_json():
    data = json.loads(to_json(make_record()))
    with pytest.raises(RecordError, match="schema_version"):
        from_json(json.dumps({**data, "schema_version": 2}))
    with pytest.raises(RecordError, match="unknown field"):
        from_json(json.dumps({**data, "colour": "red"}))
    with pytest.raises(RecordError, match="not valid JSON"):
        from_json("{not json")


def test_read_reports_file_and_line_of_a_bad_record(tmp_path):
    write_records(tmp_path, [make_record(seed=i) for i in range(3)])
    path = tmp_path / RECORDS_FILE
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"source": "sim"', '"source": "moon"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=r"records.jsonl:2: .*'source'"):
        read_records(tmp_path)


def test_failed_write_leaves_previous_records_intact(tmp_path):
    write_records(tmp_path, [make_record(seed=1)])
    with pytest.raises(TypeError, match=r"records\[1\]"):
        write_records(tmp_path, [make_record(seed=2), {"not": "a record"}])
    back = read_records(tmp_path)
    assert [r.seed for r in back] == [1]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no episode records"):
        read_records(tmp_path / "nothing")
