"""The lock-step answer's frame_id (ast_robot.records.tick): what the policy node writes, the twin reads."""

from __future__ import annotations

import pytest

from ast_robot.records.tick import answer_frame, parse_answer


@pytest.mark.parametrize("with_command,sent,frame", [
    (False, {"forward": 0, "gripper": 0}, ""),  # nothing counted yet: the answer the twin has always read
    (True, {"forward": 0, "gripper": 0}, "command"),
    (False, {"forward": 12, "gripper": 3}, "forward=12;gripper=3"),
    (True, {"forward": 0, "gripper": 2}, "command;gripper=2"),
])  # fmt: skip
def test_answers_round_trip(with_command, sent, frame):
    assert answer_frame(with_command, sent) == frame
    assert parse_answer(frame) == (with_command, {k: n for k, n in sent.items() if n})


@pytest.mark.parametrize("frame", ["forward=x", "other=3", "command;forward=-1", "received:camera", "gripper"])
def test_unreadable_counts_count_as_nothing(frame):
    """A controller that does not count (or garbles it) is not waited for: no count, no wait."""
    assert parse_answer(frame)[1] == {}
