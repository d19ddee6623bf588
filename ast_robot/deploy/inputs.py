"""Checks of incoming robot messages, as plain Python values (the ROS node passes message fields in).

Each check returns the cleaned value or raises :class:`Rejected` with a one-line reason the node logs.
Joint states are matched by *name* (drivers may publish joints in any order and add extra joints such as
gripper fingers); every joint the policy needs must be present exactly once, with a finite position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_JOINTS_IN_MESSAGE = 64  # more than any arm + hand publishes; bigger arrays are rejected unread
IMAGE_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
MAX_IMAGE_SIDE = 4096
CLOCK_SKEW_TOLERANCE_S = 0.5  # clock skew allowed between the robot's stamps and ours (either way)
FUTURE_TOLERANCE_S = CLOCK_SKEW_TOLERANCE_S


class Rejected(ValueError):
    """An incoming message was refused; ``str(err)`` is the reason, ``key`` its category (for counts)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key or message


MIN_MAX_AGE_S = 0.2  # never hold for a sample younger than this (one 25 Hz policy step + transport jitter)
# Samples are taken when the executor gets to them, so a few may arrive back to back after a busy moment:
# up to this many pass at once; beyond that, at most 4x the stream's rate on average.
BURST_SAMPLES = 4.0


class StreamBudget:
    """A sensor stream's age limit and rate budget (camera frames, tracker samples): a sample older than 3
    periods (at least :data:`MIN_MAX_AGE_S`) is stale; samples beyond 4x the nominal rate (a token bucket that
    lets :data:`BURST_SAMPLES` through at once) are refused before they are decoded or checked, so a flood
    costs constant work per message."""

    def __init__(self, rate_hz: float, field: str, source: str) -> None:
        """``rate_hz``: the stream's nominal rate (> 0), read from config ``field`` (for the error line)."""
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"{field}: expected the {source}'s rate (Hz) > 0, got {rate_hz!r}")
        self.max_age_s = max(3.0 / rate_hz, MIN_MAX_AGE_S)
        self.max_rate_hz = 4.0 * rate_hz
        self._tokens, self._tokens_s = BURST_SAMPLES, -np.inf

    def admit(self, now_s: float, sample: str, samples: str) -> None:
        """Spend one token for a sample received at ``now_s`` (s); :class:`Rejected` (named by ``sample`` /
        ``samples``) when the time is not finite or the stream runs too fast."""
        if not np.isfinite(now_s):
            raise Rejected(f"{sample} time {now_s!r} is not finite", "time")
        self._tokens = min(BURST_SAMPLES, self._tokens + max(now_s - self._tokens_s, 0.0) * self.max_rate_hz)
        self._tokens_s = float(now_s)
        if self._tokens < 1.0:
            raise Rejected(f"{samples} faster than {self.max_rate_hz:g} Hz", "too fast")
        self._tokens -= 1.0


@dataclass(frozen=True)
class JointReading:
    """A validated joint state in the policy's joint order."""

    positions: np.ndarray  # (J,) rad
    velocities: np.ndarray | None  # (J,) rad/s when the message had a full velocity array
    stamp_s: float  # the message's header stamp (s); 0.0 when the publisher left it empty


class JointStateChecker:
    """Validates the form of `/joint_states` messages for one robot (stateless: whether a well-formed state
    is believed, stamp order included, is the safety monitor's call, against the last *trusted* state, so
    a stray publisher's stamps cannot lock the driver's states out).

    ``max_age_s``: a stamped state older than ``now - max_age_s - CLOCK_SKEW_TOLERANCE_S`` is refused
    (the safety watchdog's age; None: no age check). Receipt time alone would count a state recorded
    long ago and delivered late (a replayed bag, a stalled driver's queue) as fresh.
    """

    def __init__(self, joint_names: Sequence[str], max_age_s: float | None = None) -> None:
        if not joint_names or len(set(joint_names)) != len(joint_names):
            raise ValueError(f"joint_names: expected unique names, got {list(joint_names)!r}")
        if max_age_s is not None and not (np.isfinite(max_age_s) and max_age_s > 0):
            raise ValueError(f"max_age_s: expected a positive age (s) or None, got {max_age_s!r}")
        self.joint_names = tuple(joint_names)
        self.max_age_s = max_age_s

    def check(self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float],
              stamp_s: float, now_s: float) -> JointReading:  # fmt: skip
        """Return the reading in our joint order, or raise :class:`Rejected` saying why."""
        if len(names) > MAX_JOINTS_IN_MESSAGE or len(positions) > MAX_JOINTS_IN_MESSAGE:  # before any copy
            raise Rejected(f"joint state too large: {len(names)} names, {len(positions)} positions "
                           f"(at most {MAX_JOINTS_IN_MESSAGE})", "too large")  # fmt: skip
        names, pos = list(names), np.asarray(positions, dtype=np.float64).reshape(-1)
        if len(names) != pos.size:
            raise Rejected(f"joint state has {len(names)} names but {pos.size} positions", "names/positions mismatch")
        if len(set(names)) != len(names):
            raise Rejected(f"joint state repeats joint names: {sorted(n for n in set(names) if names.count(n) > 1)}",
                           "repeated joint names")
        missing = [n for n in self.joint_names if n not in names]
        if missing:
            raise Rejected(f"joint state lacks joints {missing} (got {names[:8]})", "missing joints")
        index = np.array([names.index(n) for n in self.joint_names])
        q = pos[index]
        if not np.all(np.isfinite(q)):
            bad = [self.joint_names[i] for i in np.flatnonzero(~np.isfinite(q))]
            raise Rejected(f"joint state has non-finite positions for {bad}", "non-finite")
        self._check_stamp(stamp_s, now_s)
        return JointReading(q, self._velocities(velocities, len(names), index), stamp_s)

    def _check_stamp(self, stamp_s: float, now_s: float) -> None:
        if not np.isfinite(stamp_s) or stamp_s < 0:
            raise Rejected(f"joint state stamp {stamp_s!r} is not a valid time", "invalid stamp")
        if stamp_s == 0.0:  # unstamped messages are accepted; ordering cannot be checked
            return
        if stamp_s > now_s + FUTURE_TOLERANCE_S:
            raise Rejected(f"joint state stamp is {stamp_s - now_s:.3f} s in the future", "stamp in the future")
        if self.max_age_s is not None and stamp_s < now_s - self.max_age_s - CLOCK_SKEW_TOLERANCE_S:
            raise Rejected(f"joint state too old: stamped {now_s - stamp_s:.3f} s ago, allowed "
                           f"{self.max_age_s + CLOCK_SKEW_TOLERANCE_S:.3f} s (watchdog + clock skew); if every "
                           "state is rejected so, the driver's clock is behind this host's: synchronize them "
                           "(e.g. chrony), a stale state cannot be told from a skewed clock", "stamp too old")  # fmt: skip

    @staticmethod
    def _velocities(velocities: Sequence[float], n: int, index: np.ndarray) -> np.ndarray | None:
        vel = np.asarray(velocities, dtype=np.float64).reshape(-1)
        if vel.size != n:
            return None
        v = vel[index]
        return v if np.all(np.isfinite(v)) else None


def check_image(encoding: str, height: int, width: int, step: int, data: bytes | Sequence[int]) -> np.ndarray:
    """A camera image as uint8 (H, W, 3) RGB, or :class:`Rejected` (unknown encoding, wrong sizes)."""
    channels = IMAGE_ENCODINGS.get(encoding)
    if channels is None:
        raise Rejected(f"image encoding {encoding!r} not supported; allowed: {sorted(IMAGE_ENCODINGS)}", "encoding")
    if not (0 < height <= MAX_IMAGE_SIDE and 0 < width <= MAX_IMAGE_SIDE):
        raise Rejected(f"image size {width}x{height} outside 1..{MAX_IMAGE_SIDE} pixels per side", "size")
    if step < width * channels:
        raise Rejected(f"image step {step} < width*channels = {width * channels}", "step")
    if len(data) != step * height:  # before any copy: a hostile message may carry 64 MB
        raise Rejected(f"image data has {len(data)} bytes, expected step*height = {step * height}", "data size")
    try:  # bytes, bytearray, array.array('B') (rclpy's uint8[]): no copy
        buf = np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        buf = np.asarray(data, dtype=np.uint8).reshape(-1)
    img = buf.reshape(height, step)[:, : width * channels].reshape(height, width, channels)  # (H, W, C)
    if encoding.startswith("bgr"):
        img = img[:, :, 2::-1]
    elif encoding == "mono8":
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def resize_nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (H, W, C) to (height, width, C): cheap and dependency-free."""
    rows = (np.arange(height) * img.shape[0] // height).clip(0, img.shape[0] - 1)
    cols = (np.arange(width) * img.shape[1] // width).clip(0, img.shape[1] - 1)
    return img[rows][:, cols]
