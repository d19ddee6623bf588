"""Camera frames are placed in episodes by their own header stamps against the records' joint-state stamps
(schema 4): a frame delivered late, after the next episode began, still belongs to the episode it was taken in
and shows the state of its stamp; records without stamps fall back to receipt (where that frame is misplaced).
The null case (a nominal loop's bag read this way names nothing) is tests/ros/test_loop_camera.py."""

from __future__ import annotations

import numpy as np

from ast_robot.gap.pick_table import SheetTable
from ast_robot.gap.visual import episode_spans, frames_of_episode
from tests.gap.helpers import make_record

DT, STEPS = 0.04, 10
TABLE = SheetTable(objects=((0.5, 0.1, 0.0),), pads=((0.4, -0.1),), target_object=0, target_pad=0)


def record(seed: int, start_s: float, stamped: bool = True):
    """An open-hand episode of STEPS ticks from ``start_s``: row k measured at start + k * DT, joints = k."""
    actions = np.column_stack([np.zeros((STEPS, 2)), np.ones(STEPS)])  # the hand never told to close
    joints = np.repeat(np.arange(STEPS + 1, dtype=float)[:, None], 6, axis=1)
    stamps = [round(start_s + k * DT, 9) for k in range(STEPS + 1)] if stamped else None
    return make_record(seed=seed, source="real", task="pickplace", steps=STEPS, actions=actions,
                       joint_positions=joints, joint_targets=joints[1:], joint_stamps=stamps)  # fmt: skip


def place(records, images, ends):
    """Per episode: the joints (row index) of each frame the analysis would compare."""
    out = []
    for rec, (start, end, by_stamp) in zip(records, episode_spans(records, lambda: ends)):
        mine = [f for f in images if start <= f[1 if by_stamp else 0] <= end]
        out.append([int(f.q[0]) for f in frames_of_episode(rec, mine, start, TABLE)])
    return out


def test_a_frame_delivered_after_the_next_episodes_start_stays_in_its_own_episode():
    records = [record(0, 10.0), record(1, 11.0)]  # episode 0: 10.0..10.4 s, episode 1: 11.0..11.4 s
    image = np.zeros((4, 4, 3), np.uint8)
    # (received s, taken s): one on time in each episode; one taken at 10.12 s (row 3) received at 11.1 s
    images = [(10.04, 10.04, image), (10.12 + 1.0, 10.12, image), (11.2, 11.2, image)]
    ends = [10.4 + 0.01, 11.4 + 0.01]  # outcome messages, received just after each end
    assert place(records, images, ends) == [[1, 3], [5]]
    # without stamps (schema <= 3) the late frame is placed by receipt: in episode 1, at its receipt's row
    old = [record(0, 10.0, stamped=False), record(1, 11.0, stamped=False)]
    assert place(old, images, ends) == [[1], [3, 5]]  # row 3 of the wrong episode


def test_on_time_frames_are_placed_alike_by_stamp_and_by_receipt():  # the null case of the rule itself
    records = [record(0, 10.0), record(1, 11.0)]
    image = np.zeros((4, 4, 3), np.uint8)
    images = [(t, t, image) for t in (10.0, 10.08, 10.2, 11.04, 11.16)]
    ends = [10.4, 11.4]
    old = [record(0, 10.0, stamped=False), record(1, 11.0, stamped=False)]
    assert place(records, images, ends) == place(old, images, ends) == [[0, 2, 5], [1, 4]]


def test_frames_between_episodes_and_after_the_close_command_are_left_out():
    rec = record(0, 10.0)
    actions = np.array(rec.actions)
    actions[4:, -1] = -1.0  # told to close at row 4 (10.16 s): the cubes may move from there on
    closing = make_record(seed=0, source="real", task="pickplace", steps=STEPS, actions=actions,
                          joint_positions=rec.joint_positions, joint_targets=rec.joint_targets,
                          joint_stamps=rec.joint_stamps)  # fmt: skip
    image = np.zeros((4, 4, 3), np.uint8)
    images = [(t, t, image) for t in (9.9, 10.0, 10.08, 10.12, 10.16, 10.3, 10.5)]
    assert place([closing], images, [10.4]) == [[0, 2]]  # 10.12 is within a tick of the close: left out
