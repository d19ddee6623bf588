"""The camera frames of a bag placed in their episodes, each with the arm's state when it was taken
(:mod:`ast_robot.gap.visual` compares them with re-renders of the same scenes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.gap.pick_table import SheetTable, TableSheets
from ast_robot.records import EpisodeRecord

STAMP_EPS_S = 1e-9  # stamps are whole nanoseconds; seconds as floats compare within this


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8, as the camera published it
    q: np.ndarray  # (J,) arm joints at the frame's time (rad)
    table: SheetTable
    around: tuple[np.ndarray, ...] = ()  # arm joints one control tick before and after (motion mask)
    opening: float | None = None  # measured gripper opening (m) at the frame's time; None: the widest


def frames_of_episode(record: EpisodeRecord, images: Sequence[tuple[float, float, np.ndarray]], start_s: float,
                      table: SheetTable, measured: Callable[[float, float], Any] = lambda t, dt: None) -> list[Frame]:  # fmt: skip
    """The frames (bag time s, time taken s, image) of one episode whose scene is known: after its start and
    before the hand was first told to close (the cubes still rest where the table put them). With the record's
    ``joint_stamps`` (schema 4) both are judged by the frame's own stamp against the stamps of the record's
    joint states (``start_s`` unused); without them (older records) by the frame's receipt, ``start_s`` being
    the episode's start on the bag's clock. ``measured(taken, dt)``: the arm joints, the joints one control tick
    ``dt`` around and the gripper opening that the bag's joint states measured when the frame was taken (None:
    no joint states; the record's joints at the frame's time and the widest opening are used)."""
    closing = np.flatnonzero(np.asarray(record.actions)[:, -1] < 0.0)
    first_close = int(closing[0]) if closing.size else record.steps
    out = []
    q = record.joint_positions
    for t, taken, image in images:
        k, before_close = _row_of(record, t, taken, start_s, first_close)
        if not (0 <= k < q.shape[0] and before_close):
            continue
        state = measured(taken, record.control_dt)
        if state is None:
            out.append(Frame(np.asarray(image), q[k], table, (q[max(k - 1, 0)], q[min(k + 1, q.shape[0] - 1)])))
        else:
            out.append(Frame(np.asarray(image), state[0], table, state[1], state[2]))
    return out


def _row_of(record: EpisodeRecord, received_s: float, taken_s: float, start_s: float, first_close: int) -> tuple[int, bool]:
    """(row of the record's joint states a frame shows, whether it was taken at least a control tick before the
    hand was first told to close). By stamps: the last state stamped at or before the frame (a frame at ``t`` is
    rendered at the state of ``t``); by receipt (no stamps): the receipt's time from the start in control ticks."""
    dt = record.control_dt
    stamps = record.joint_stamps
    if stamps is None:
        elapsed = received_s - start_s
        return int(round(elapsed / dt)), elapsed < first_close * dt - dt
    k = int(np.searchsorted(stamps, taken_s + STAMP_EPS_S, side="right")) - 1
    until = stamps[min(first_close, len(stamps) - 1)] if first_close < record.steps else stamps[-1] + dt
    return k, taken_s < until - dt - STAMP_EPS_S


def episode_frames(robot: str, records: Sequence[EpisodeRecord], bag: Any, sheets: TableSheets | None = None,
                   topic: str | None = None) -> list[Frame]:  # fmt: skip
    """Frames of a bag's camera topic assigned to its episodes (:func:`episode_spans`); see
    :func:`frames_of_episode`. A frame's pose is the joint state stamped when it was taken, not the one at its
    receipt: on a loaded machine the recorder received frames late (a nominal bag read 11 levels RMS against the
    floor of 2 when placed by receipt)."""
    from ast_robot.records.bag import read_bag_frames

    sheets = sheets or TableSheets(robot)
    raw = read_bag_frames(bag, topic) if topic else read_bag_frames(bag)  # default: the scene camera's topic
    images = [(t * 1e-9, taken * 1e-9, img) for t, taken, img in raw]
    spans = episode_spans(records, lambda: _outcome_stamps(bag))
    measured = _measured_states(robot, bag)
    out: list[Frame] = []
    for rec, (start, end, by_stamp) in zip(records, spans):
        table = sheets.find(rec)
        if table is None:
            continue
        mine = [f for f in images if start <= f[1 if by_stamp else 0] <= end]
        out += frames_of_episode(rec, mine, start, table, measured)
    return out


def episode_spans(records: Sequence[EpisodeRecord], outcome_ends: Callable[[], list[float]]) -> list[tuple[float, float, bool]]:
    """(start s, end s, by stamp) of each record's episode. Records with ``joint_stamps`` (schema 4): the stamps
    of their first and last joint states, the clock the camera stamps its frames on, so a frame delivered late
    (after the next episode began) still falls in the episode it was taken in. Older records: each outcome
    message (``outcome_ends()``, bag times s, in order) ends an episode that began ``steps * control_dt`` before
    it, and frames are placed by their receipt (a frame received after the next start is misplaced)."""
    if records and all(r.joint_stamps is not None for r in records):
        return [(float(r.joint_stamps[0]), float(r.joint_stamps[-1]), True) for r in records]
    ends = outcome_ends()
    return [(end - r.steps * r.control_dt, end, False) for r, end in zip(records, ends)]


def _measured_states(robot: str, bag: Any) -> Callable[[float, float], Any]:
    """(time taken s, control tick s) -> (arm joints, (joints a tick before, after), gripper opening m or None)
    from the bag's joint states by their header stamps (the camera's clock); None where the bag has none."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    from ast_robot.deploy.gripper import GripperCommander
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.robot.specs import get_robot

    io = load_robot_io(robot)
    gripper = GripperCommander(io.gripper, tuple(get_robot(robot).gripper_width))
    store, times, arms, widths = get_typestore(Stores.ROS2_KILTED), [], [], []
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == io.topics.joint_states]
        for conn, _stamp, raw in reader.messages(connections=conns) if conns else ():  # none: rosbags reads all
            msg = store.deserialize_cdr(raw, conn.msgtype)
            by_name = dict(zip(msg.name, msg.position))
            if not all(n in by_name for n in io.joint_names):
                continue
            times.append(int(msg.header.stamp.sec) + int(msg.header.stamp.nanosec) * 1e-9)
            arms.append([by_name[n] for n in io.joint_names])
            widths.append(gripper.width_from_state(list(msg.name), list(msg.position)))
    order = np.argsort(times, kind="stable")
    times, arms = np.asarray(times)[order], np.asarray(arms, dtype=float).reshape(-1, len(io.joint_names))[order]
    widths = [widths[i] for i in order]

    def index(t: float) -> int:
        return int(np.searchsorted(times, t + 1e-9, side="right")) - 1

    def at(taken: float, dt: float) -> Any:
        i = index(taken)
        if i < 0:
            return None
        around = (arms[max(index(taken - dt), 0)], arms[max(index(taken + dt), 0)])
        return arms[i], around, widths[i]

    return at


def _outcome_stamps(bag: Any) -> list[float]:
    """Bag times (s) of the outcome messages, in order (the records' order)."""
    from rosbags.rosbag2 import Reader

    from ast_robot.config.deploy import RosNames

    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == RosNames().outcome]
        return [stamp * 1e-9 for _c, stamp, _raw in reader.messages(connections=conns)]
