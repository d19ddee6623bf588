"""Camera frames for the policy: encoding and size checked, rate bounded, resized as trained, age known.

A pixel policy trained on the scene camera must see the image it was trained on, and a recent one: an image
that stopped arriving (a dead driver, a cable) would otherwise be fed again and again while the arm moves.
:class:`CameraInput` keeps the latest accepted frame and its receipt time; :meth:`CameraInput.latest` gives
it only while it is at most ``max_age_s`` old (the runner holds otherwise). Frames beyond 4x the camera's rate (a token bucket that
lets a short burst through) are refused before they are decoded, so a flood costs constant work per message.
"""

from __future__ import annotations

import numpy as np

from ast_robot.deploy.inputs import Rejected, check_image, resize_nearest

MIN_MAX_AGE_S = 0.2  # never hold for a frame younger than this (one 25 Hz policy step + transport jitter)
# Frames are taken when the executor gets to them, so a few may arrive back to back after a busy moment:
# up to this many pass at once; beyond that, at most 4x the camera's rate on average.
BURST_FRAMES = 4.0


class CameraInput:
    """The latest camera frame at the policy's size ((H, W, 3) uint8 RGB)."""

    def __init__(self, size: tuple[int, int], rate_hz: float) -> None:
        """``size``: the trained (height, width); ``rate_hz``: the camera's nominal rate (> 0). Frames older than
        3 periods (at least :data:`MIN_MAX_AGE_S`) are stale; frames more than 4x faster (after a burst of
        :data:`BURST_FRAMES`) are refused."""
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"camera_rate_hz: expected the camera's rate (Hz) > 0, got {rate_hz!r}")
        self.size = (int(size[0]), int(size[1]))
        self.max_age_s = max(3.0 / rate_hz, MIN_MAX_AGE_S)
        self.max_rate_hz = 4.0 * rate_hz
        self._tokens, self._tokens_s = BURST_FRAMES, -np.inf  # token bucket: bursts allowed, the mean bounded
        self.image: np.ndarray | None = None
        self.received_s = -np.inf

    def offer(self, encoding: str, height: int, width: int, step: int, data: bytes, now_s: float) -> np.ndarray:
        """Check, resize and keep a frame received at ``now_s`` (monotonic s); :class:`Rejected` saying why not."""
        if not np.isfinite(now_s):
            raise Rejected(f"camera frame time {now_s!r} is not finite", "time")
        self._tokens = min(BURST_FRAMES, self._tokens + max(now_s - self._tokens_s, 0.0) * self.max_rate_hz)
        self._tokens_s = float(now_s)
        if self._tokens < 1.0:
            raise Rejected(f"camera frames faster than {self.max_rate_hz:g} Hz", "too fast")
        self._tokens -= 1.0
        img = check_image(encoding, height, width, step, data)
        self.image = resize_nearest(img, *self.size) if img.shape[:2] != self.size else img
        self.received_s = float(now_s)
        return self.image

    def latest(self, now_s: float) -> np.ndarray | None:
        """The latest frame, or None when there is none or it is older than ``max_age_s``."""
        if self.image is None or not now_s - self.received_s <= self.max_age_s:
            return None
        return self.image
