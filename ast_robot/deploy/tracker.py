"""The cubes' positions for a tracker-fed (privileged-layout) pick-and-place policy: checked, rate-bounded, aged.

A lab serves the privileged pick-and-place observation (``pickplace-privileged-v1``) with an object tracker
(motion capture, fiducial tags: ``topics.object_poses``, geometry_msgs/PoseArray in the table's cube order) and
the operator's table (which cube goes to which pad: :mod:`ast_robot.deploy.table`). :class:`TrackerInput`
keeps the latest trusted sample and the cubes' velocities (finite differences of consecutive samples: a
tracker measures poses, not velocities). Whether a sample counts is the one safety package's call
(:class:`~ast_robot.robot.safety.TrackerTrust`: count, finite, inside the tracked volume, no jump); a stale or
missing sample leaves the policy without its observation, and the runner holds. Samples beyond 4x the
tracker's rate (after a short burst) are refused before they are checked, as camera frames are.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ast_robot.deploy.inputs import Rejected, StreamBudget
from ast_robot.robot.safety import TrackerTrust
from ast_robot.robot.safety.trust import JUMP_REASON
from ast_robot.robot.sampling import TRACKER_RATE_HZ, finite_velocity, interval_s

__all__ = ["MAX_TRACKED_OBJECTS", "TRACKER_RATE_HZ", "TrackerInput"]

MAX_TRACKED_OBJECTS = 64  # bigger arrays are refused unread
# A sample trusted before its table counts for that table when every cube is this close to the table's place for it:
# the twin puts them there exactly; an operator's placement that is further off costs one tracker period's hold.
TABLE_MATCH_M = 0.01
# TRACKER_RATE_HZ (ast_robot.robot.sampling): the twin publishes its cubes' poses at that rate. Motion capture is
# faster: a faster stream only passes the rate check with more room (4x), and ages out later than it could.


class TrackerInput:
    """The latest trusted cube positions (n, 3) m and velocities (n, 3) m/s."""

    def __init__(self, n_objects: int, rate_hz: float) -> None:
        """``n_objects``: the cubes the policy was trained with; ``rate_hz``: the tracker's nominal rate (> 0).
        Samples older than 3 periods are stale (:class:`~ast_robot.deploy.inputs.StreamBudget`)."""
        self.budget = StreamBudget(rate_hz, "tracker_rate_hz", "tracker")
        self.max_age_s = self.budget.max_age_s
        self.trust = TrackerTrust(n_objects, self.max_age_s)
        self.positions: np.ndarray | None = None
        self.velocities = np.zeros((n_objects, 3))
        self._stamp_s = 0.0  # the latest trusted sample's stamp (s; 0: unstamped)
        # The last sample refused as a jump (positions, receipt s, stamp s): the twin moves the cubes to the next
        # table at once, and DDS may deliver that table's first sample before the table itself (no order across
        # topics); :meth:`reset` judges it again, so both orders give the same input.
        self._jumped: tuple[np.ndarray, float, float] | None = None

    @property
    def n_objects(self) -> int:
        return self.trust.n_objects

    def offer(self, positions: object, now_s: float, stamp_s: float = 0.0) -> np.ndarray:
        """Check and keep a sample received at ``now_s`` (the node's clock, s), measured at ``stamp_s`` (its
        header stamp, s; 0: unstamped, the receipt time stands in for velocities); :class:`Rejected` saying why
        not."""
        self.budget.admit(now_s, "tracker sample", "tracker samples")
        return self._keep(_as_positions(positions), now_s, stamp_s)

    def _keep(self, p: np.ndarray, now_s: float, stamp_s: float) -> np.ndarray:
        previous, prev_time = self.positions, self._sample_time()
        reason = self.trust.judge(p, float(now_s))
        self._jumped = (p, now_s, stamp_s) if reason is not None and reason.startswith(JUMP_REASON) else None
        if reason is not None:
            raise Rejected(f"object poses not trusted: {reason}", reason.split(" (")[0][:40])
        self._stamp_s = float(stamp_s) if np.isfinite(stamp_s) and stamp_s > 0 else 0.0
        # over the stamps' interval in whole microseconds (robot.sampling: as an env with the pipeline computes it)
        dt = interval_s(self._sample_time(), prev_time) if previous is not None else 0.0
        self.velocities = finite_velocity(p, previous, dt, self.max_age_s) if previous is not None else np.zeros_like(p)
        self.positions = p
        return p

    def _sample_time(self) -> float:
        """When the latest trusted sample was measured: its stamp, else its receipt."""
        if self._stamp_s > 0:
            return self._stamp_s
        return -np.inf if self.trust.last is None else self.trust.last[1]

    def latest(self, now_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(positions (n, 3) m, velocities (n, 3) m/s) of the latest trusted sample, or None when there is none
        or it is older than ``max_age_s``."""
        if self.positions is None or not self.trust.fresh(now_s):
            return None
        return self.positions, self.velocities

    def reset(self, table_xy: np.ndarray | None = None) -> None:
        """The table was set again (the cubes moved at once): trust the next sample anew. DDS keeps no order across
        topics, so the new table's first sample may have come before the table: one refused as a jump just before
        is judged again as that next sample, and so is the latest trusted one when it shows every cube where
        ``table_xy`` ((n, 2) m, the table's cube centres) puts it, within TABLE_MATCH_M (on the first table there
        was no earlier one to jump from; dropping it held the policy for a tracker period at the episode's start:
        tests/ros/test_pipeline_parity.py[fr3], 1 of 12 runs at load 6-9)."""
        on_table = None
        if table_xy is not None and self.positions is not None and self.trust.last is not None:
            if _shows_table(self.positions, np.asarray(table_xy, dtype=np.float64)):
                on_table = (self.positions, self.trust.last[1], self._stamp_s)
        jumped, self._jumped = self._jumped, None
        self.trust.reset()
        self.positions, self._stamp_s = None, 0.0
        self.velocities = np.zeros_like(self.velocities)
        for sample in (jumped, on_table):
            if sample is not None:
                with contextlib.suppress(Rejected):
                    self._keep(*sample)
                    return


def _shows_table(positions: np.ndarray, table_xy: np.ndarray) -> bool:
    """Whether a sample's cube centres (n, 3) m sit where the table's (n, 2) m put them."""
    if table_xy.shape != (len(positions), 2):
        return False
    return bool(np.all(np.linalg.norm(positions[:, :2] - table_xy, axis=1) <= TABLE_MATCH_M))


def _as_positions(positions: object) -> np.ndarray:
    try:
        arr = np.asarray(positions, dtype=np.float64)
    except (TypeError, ValueError):
        raise Rejected("object poses: expected (n, 3) numbers (m)", "not numbers") from None
    if arr.size > 3 * MAX_TRACKED_OBJECTS or arr.ndim != 2 or arr.shape[1:] != (3,):
        raise Rejected(f"object poses: expected (n, 3) positions, n <= {MAX_TRACKED_OBJECTS}, got {arr.shape}", "shape")
    return arr
