"""Which measured joint states are measurements of the arm: the trust rule the safety monitor applies first.

A joint state counts only when every position is inside the joint limits and reachable from the last trusted
state at the data-sheet speed over the time between them (:class:`MeasurementTrust`). The safety monitor
(:mod:`ast_robot.robot.safety.arm`) reads trusted states only. Pure numpy, no ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ast_robot.robot.safety import SafetyLimits

# Trust of measured joint states (MeasurementTrust). A state must be reachable from the last trusted one at
# the data-sheet speed x (1 + margin) over the time between them, plus a noise allowance per state. The time
# is the stamp interval, but never more than the receipt interval + jitter (a forged stamp buys no reach).
TRUST_SPEED_MARGIN = 0.25
TRUST_JITTER_S = 0.005  # bunched DDS delivery: two states stamped 2 ms apart may arrive 0 ms apart
TRUST_NOISE_RAD = 0.002  # encoder noise and rounding per state (UR/Franka encoders resolve ~1e-5 rad)
LIMIT_TOLERANCE_RAD = 0.01  # a measured position this far beyond a joint limit is still physical
# States needed to (re)acquire trust: this many in a row, each reachable from the one before and received
# within the watchdog period of it. A stream slower than the watchdog (a stray 10 Hz publisher) never
# qualifies, and a state that conflicts with the chain restarts it.
ACQUIRE_STATES = 3


@dataclass(frozen=True)
class _Sample:
    q: np.ndarray  # (J,) rad
    received_s: float  # monotonic receipt time (s)
    stamp_s: float  # header stamp (s); 0.0: unstamped


class MeasurementTrust:
    """Decides which joint states are measurements of the arm: :meth:`judge` returns None (trusted) or
    the reason a state is not.

    - Outside the joint limits (beyond :data:`LIMIT_TOLERANCE_RAD`): never trusted (1e9, a wrapped angle).
    - While a trusted state is fresh (within the watchdog period): a new state must be reachable from it
      (:data:`TRUST_SPEED_MARGIN`, :data:`TRUST_JITTER_S`, :data:`TRUST_NOISE_RAD`) with a stamp not
      before its stamp. A jump (0.5 rad in 2 ms, a stray all-zeros state) is rejected and leaves the
      trusted state where it was.
    - At start-up and once the trusted state went stale: :data:`ACQUIRE_STATES` consecutive states, each
      reachable from the one before and received within the watchdog period of it, re-establish trust. A
      slow stray publisher never forms such a chain. After a gap the chain must also start within reach of
      the last trusted state over the whole gap (receipt times): the bound grows with the gap, so a real
      arm moved during a driver outage is believed again, but a stray all-zeros burst 2 rad away is not
      after a 0.25 s outage (it would need 0.4 s at 1.25 x 3.14 rad/s).
    - Two streams that are each consistent but disagree (a stray publisher at the driver's rate): when the
      rejected states themselves form an :data:`ACQUIRE_STATES` chain while a trusted one is fresh, trust
      is revoked and the stream is stale until one source stops. We cannot tell which is the robot, so we
      fail closed (hold) rather than follow either; once the stray stops, the driver's states reacquire
      trust within :data:`ACQUIRE_STATES` states, so the real stream is never locked out for longer.

    Not covered: a publisher that knows the arm's position and sends plausible states slightly off it is
    indistinguishable from the driver at this level (each state may move the trusted value by the noise
    allowance); keeping such publishers off the topic is the transport's job (SROS2 access control).
    """

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.trusted: _Sample | None = None  # the last trusted state while fresh (None: (re)acquiring)
        self.last: _Sample | None = None  # the last trusted state, however old
        self._chain: list[_Sample] = []  # candidates while (re)acquiring
        self._rival: list[_Sample] = []  # rejected-but-consistent states while trusted (a second stream)
        self._reach_speed = limits.max_velocity * (1.0 + TRUST_SPEED_MARGIN)  # (J,) rad/s

    def judge(self, q: np.ndarray, received_s: float, stamp_s: float = 0.0) -> str | None:
        """None when ``q`` (J,) rad is trusted (it becomes the reference), else the reason (one line)."""
        lim = self.limits
        if np.any(q < lim.lower - LIMIT_TOLERANCE_RAD) or np.any(q > lim.upper + LIMIT_TOLERANCE_RAD):
            return "outside joint limits"
        new = _Sample(q, float(received_s), float(stamp_s))
        if self.trusted is not None and self._close(self.trusted, new):
            problem = self._unreachable(self.trusted, new)
            if problem:
                return self._rival_seen(new, problem)
            self.trusted = self.last = new  # the rival chain stays: a stray stream interleaves with the driver's
            return None
        return self._acquire(new)

    def _acquire(self, new: _Sample) -> str | None:
        self.trusted, self._rival = None, []
        if self._chain and (self._unreachable(self._chain[-1], new) or not self._close(self._chain[-1], new)):
            self._chain = []
        if not self._chain and not self._reachable_since_last(new):
            return "unreachable from the last trusted state in the time since"
        self._chain.append(new)
        if len(self._chain) < ACQUIRE_STATES:
            return "acquiring trust"
        self.trusted, self.last, self._chain = new, new, []
        return None

    def _reachable_since_last(self, new: _Sample) -> bool:
        """Whether ``new`` is reachable from the last trusted state over the receipt time since (stamps are
        not used: they come from the publisher). A clock that went back (a restart) bounds nothing."""
        last = self.last
        dt = None if last is None else new.received_s - last.received_s
        if dt is None or dt < -self.limits.stale_after_s:
            return True
        reach = self._reach_speed * (max(dt, 0.0) + TRUST_JITTER_S) + TRUST_NOISE_RAD
        return bool(np.all(np.abs(new.q - last.q) <= reach))

    def _rival_seen(self, new: _Sample, problem: str) -> str:
        """Count a rejected state towards a rival chain; revoke trust when the rival is a stream itself."""
        rival = self._rival
        if rival and (self._unreachable(rival[-1], new) or not self._close(rival[-1], new)):
            rival.clear()
        rival.append(new)
        if len(rival) >= ACQUIRE_STATES:
            self.trusted, self._rival, self._chain = None, [], []
            return "conflicting joint state streams"
        return problem

    def _close(self, ref: _Sample, new: _Sample) -> bool:
        """Received within the watchdog period of ``ref`` (either way: a clock stepped back is a gap too)."""
        return abs(new.received_s - ref.received_s) <= self.limits.stale_after_s

    def _unreachable(self, ref: _Sample, new: _Sample) -> str:
        """Why ``new`` cannot follow ``ref`` ('' when it can)."""
        dt = max(new.received_s - ref.received_s, 0.0) + TRUST_JITTER_S
        if new.stamp_s > 0.0 and ref.stamp_s > 0.0:
            if new.stamp_s < ref.stamp_s:
                return "stamp before the last trusted state"
            dt = min(dt, new.stamp_s - ref.stamp_s)
        if np.any(np.abs(new.q - ref.q) > self._reach_speed * dt + TRUST_NOISE_RAD):
            return "unreachable from the last trusted state"
        return ""


# Trust of tracked object positions (TrackerTrust): what a lab's tracker (motion capture, tags) reports of the
# cubes the policy observes. A sample counts when it names every cube once, finite, inside the tracked volume,
# and each cube reachable from its last trusted position at TRACKER_MAX_SPEED over the time between (a tag
# swapped between two cubes, or a mismatched marker, jumps farther). Stale samples (older than the age limit)
# leave the policy without its observation: the runner holds.
TRACKER_MAX_SPEED = 3.0  # m/s: a cube carried at the arm's top TCP speed moves < 2 m/s
JUMP_REASON = "an object jumped farther"  # how a jump's refusal begins (deploy.tracker re-judges it on a new table)
TRACKER_NOISE_M = 0.01  # a tracker's position noise and a tag's re-detection jitter
TRACKED_VOLUME = ((-1.5, -1.5, -0.1), (1.5, 1.5, 1.5))  # m, base_link: beyond it a sample is no table cube


class TrackerTrust:
    """Decides which tracker samples are measurements of the table's cubes: :meth:`judge` returns None
    (trusted) or the reason a sample is not; :meth:`fresh` says whether the last trusted one is recent."""

    def __init__(self, n_objects: int, max_age_s: float) -> None:
        if n_objects < 1 or not (np.isfinite(max_age_s) and max_age_s > 0):
            raise ValueError(f"tracker: expected >= 1 object and an age limit > 0 s, got {n_objects}, {max_age_s}")
        self.n_objects, self.max_age_s = int(n_objects), float(max_age_s)
        self.last: tuple[np.ndarray, float] | None = None  # (positions (n, 3) m, time s) of the last trusted

    def judge(self, positions: np.ndarray, time_s: float) -> str | None:
        """None when ``positions`` (n, 3) m measured at ``time_s`` are trusted (they become the last), else why not."""
        p = np.asarray(positions, dtype=np.float64)
        if p.shape != (self.n_objects, 3):
            return f"expected {self.n_objects} object positions (the table's cubes), got {p.shape[0] if p.ndim else 0}"
        if not np.isfinite(p).all():
            return "non-finite object positions"
        low, high = (np.asarray(v) for v in TRACKED_VOLUME)
        if np.any(p < low) or np.any(p > high):
            return f"object positions outside the tracked volume {TRACKED_VOLUME} m"
        if self.last is not None and abs(time_s - self.last[1]) <= self.max_age_s:
            if time_s < self.last[1]:
                return "sample older than the last trusted one"
            reach = TRACKER_MAX_SPEED * (time_s - self.last[1]) + TRACKER_NOISE_M
            if np.any(np.linalg.norm(p - self.last[0], axis=1) > reach):
                return f"{JUMP_REASON} than {TRACKER_MAX_SPEED:g} m/s allows (a swapped or lost tag)"
        self.last = (p.copy(), float(time_s))
        return None

    def fresh(self, now_s: float) -> bool:
        """Whether the last trusted sample is at most ``max_age_s`` old at ``now_s``."""
        return self.last is not None and -self.max_age_s <= now_s - self.last[1] <= self.max_age_s

    def reset(self) -> None:
        self.last = None
