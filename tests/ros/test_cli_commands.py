"""`ast-robot deploy | twin | record`: bad input gives one clear line and exit 2; record writes a bag."""

from __future__ import annotations

import pytest

from ast_robot.cli import main


@pytest.mark.parametrize("argv,needle", [
    (["deploy", "/no/such/ckpt"], "checkpoint: /no/such/ckpt does not exist"),
    (["deploy", "scripted:reach", "--robot", "ur10"], "unknown robot 'ur10'"),
    (["deploy", "scripted:reach", "--set", "control_hz=-5"], "control_hz"),
    (["deploy", "scripted:reach", "--set", "contrl_hz=5"], "did you mean 'control_hz'"),
    (["twin", "--hidden", "/no/such.yaml"], "does not exist"),
    (["twin", "--rate", "-1"], "--rate: expected a /joint_states rate > 0"),
    (["record", "--out", "."], "exists already"),
])  # fmt: skip
def test_bad_input_exits_2_with_a_clear_line(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_record_writes_a_readable_bag(tmp_path):
    from rosbags.highlevel import AnyReader

    bag = tmp_path / "bag"
    assert main(["record", "--out", str(bag), "--duration", "0.5", "--storage", "sqlite3"]) == 0
    with AnyReader([bag]) as reader:
        assert sorted(c.topic for c in reader.connections) == ["/ast/outcome", "/joint_states"]
