"""The sim-time lock-step's answer on ``/ast/tick`` (std_msgs/Header): what the policy node sent for a state.

The twin on simulated time publishes the joint state stamped ``t`` and waits for the policy node's answer
stamped ``t`` before it steps on (:mod:`ast_robot.twin.node`). The answer's ``frame_id`` says what the node sent
for that state, so the twin also waits until it has received it: a JointTrajectory stamped ``t`` (``command``),
and, since a Float64MultiArray carries no stamp, how many forward-position arm commands and gripper commands the
node has published in all (``forward=N``, ``gripper=M``). DDS orders messages within a topic, not across topics:
without the counts an FR3 arm command (forward position) or a gripper command could arrive after the twin had
stepped past its tick, and act a period late depending on the load (issue 21).

    "command;forward=12;gripper=3"   ""   "forward=7"
"""

from __future__ import annotations

TICK_WITH_COMMAND = "command"  # a JointTrajectory stamped with the answered state's time went out first
SENT_KINDS = ("forward", "gripper")  # the unstamped commands counted in an answer


def answer_frame(with_command: bool, sent: dict[str, int]) -> str:
    """The answer's frame_id: ``command`` when a stamped trajectory went out, then each kind's total count."""
    parts = [TICK_WITH_COMMAND] if with_command else []
    parts += [f"{kind}={int(sent[kind])}" for kind in SENT_KINDS if sent.get(kind)]
    return ";".join(parts)


def parse_answer(frame_id: str) -> tuple[bool, dict[str, int]]:
    """(a stamped trajectory went out, total counts of unstamped commands per kind) of an answer's frame_id;
    anything unreadable counts as nothing (a controller that does not count is not waited for)."""
    parts = frame_id.split(";") if frame_id else []
    counts = {}
    for part in parts[1 if parts[:1] == [TICK_WITH_COMMAND] else 0 :]:
        kind, _, value = part.partition("=")
        if kind in SENT_KINDS and value.isdigit():
            counts[kind] = int(value)
    return parts[:1] == [TICK_WITH_COMMAND], counts
