"""Episode-record schema: validation, JSON round trip, folder round trip and atomicity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ast_robot.records import (
    RECORDS_FILE,
    ContactSummary,
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
        from_json(json.dumps({**data, "schema_version": 99}))
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


def test_bad_input_is_rejected_before_anything_is_written(tmp_path):
    write_records(tmp_path, [make_record(seed=1)])
    with pytest.raises(TypeError, match=r"records\[1\]"):
        write_records(tmp_path, [make_record(seed=2), {"not": "a record"}])
    assert [r.seed for r in read_records(tmp_path)] == [1]


def test_write_failing_mid_file_leaves_previous_records_intact(tmp_path, monkeypatch):
    import ast_robot.fileio as fileio

    write_records(tmp_path, [make_record(seed=1)])
    before = sorted(p.name for p in tmp_path.iterdir())

    def replace_fails_for_jsonl(src, dst):  # the new arrays file lands; the JSONL's rename fails
        if str(dst).endswith(RECORDS_FILE):
            raise OSError("disk full")
        return real_replace(src, dst)

    real_replace = fileio.os.replace
    monkeypatch.setattr(fileio.os, "replace", replace_fails_for_jsonl)
    with pytest.raises(OSError, match="disk full"):
        write_records(tmp_path, [make_record(seed=2, steps=7), make_record(seed=3)])
    monkeypatch.undo()
    assert [r.seed for r in read_records(tmp_path)] == [1]  # the old JSONL still names its own arrays file
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert set(before) <= {p.name for p in tmp_path.iterdir()}


def test_numpy_integers_are_stored_as_ints_and_serialize():
    rec = make_record(seed=np.int64(3), contact=ContactSummary(2.0, 1.0, np.int64(2)),
                      meta={"step": np.int64(7), "lr": np.float64(0.5), "ok": np.bool_(True)})  # fmt: skip
    assert type(rec.seed) is int and type(rec.contact.contact_steps) is int and type(rec.meta["step"]) is int
    back = from_json(to_json(rec))
    assert (back.seed, back.contact.contact_steps, back.meta) == (3, 2, {"step": 7, "lr": 0.5, "ok": True})


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"time_to_success": 1e6}, "time_to_success", "episode's duration"),  # 5 steps x 0.04 s
        ({"contact": ContactSummary(2.0, 1.0, 10**6)}, "contact.contact_steps", "5 control steps"),
        ({"source": "real", "randomization": {}, "contact": ContactSummary(2.0, 1.0, 6)}, "contact.contact_steps",
         "5 control steps"),
        ({"schema_version": 1.0}, "schema_version", "unknown schema version"),
    ],
)  # fmt: skip
def test_physically_impossible_records_are_rejected(overrides, field, reason):
    with pytest.raises(RecordError, match=reason) as info:
        make_record(**overrides)
    assert info.value.field == field


def test_time_up_to_one_step_past_the_last_is_accepted_and_robot_clocks_may_run_late():
    assert make_record(time_to_success=0.24).time_to_success == 0.24  # 5 x 0.04 s + one step
    assert make_record(source="real", randomization={}, time_to_success=0.5).time_to_success == 0.5


def test_building_a_record_does_not_freeze_the_callers_arrays():
    actions = np.zeros((5, 3))
    rec = make_record(actions=actions)
    actions[0, 0] = 1.0  # still writable, and the record kept its own copy
    assert rec.actions[0, 0] == 0.0 and not rec.actions.flags.writeable


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no episode records"):
        read_records(tmp_path / "nothing")
