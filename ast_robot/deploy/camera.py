"""Camera frames for the policy: encoding and size checked, rate bounded, resized as trained, age known.

A pixel policy trained on the scene camera must see the image it was trained on, and a recent one: an image
that stopped arriving (a dead driver, a cable) would otherwise be fed again and again while the arm moves.
:class:`CameraInput` keeps the latest accepted frame and its receipt time; :meth:`CameraInput.latest` gives
it only while it is at most ``max_age_s`` old (the runner holds otherwise). Frames beyond 4x the camera's rate (a token bucket that
lets a short burst through) are refused before they are decoded, so a flood costs constant work per message.
A wrist-camera policy has two of them, the scene camera's and the wrist camera's (``name``), checked alike.
"""

from __future__ import annotations

import numpy as np

from ast_robot.deploy.inputs import StreamBudget, check_image, resize_nearest


class CameraInput:
    """The latest camera frame at the policy's size ((H, W, 3) uint8 RGB)."""

    def __init__(self, size: tuple[int, int], rate_hz: float, name: str = "camera") -> None:
        """``size``: the trained (height, width); ``rate_hz``: the camera's nominal rate (> 0). Frames older than
        3 periods are stale; frames more than 4x faster (after a short burst) are refused
        (:class:`~ast_robot.deploy.inputs.StreamBudget`). ``name`` ("camera", "wrist camera") names it in
        rejections and holds."""
        self.name = name
        self.budget = StreamBudget(rate_hz, "camera_rate_hz", name)
        self.max_age_s = self.budget.max_age_s
        self.size = (int(size[0]), int(size[1]))
        self.image: np.ndarray | None = None
        self.received_s = -np.inf

    def offer(self, encoding: str, height: int, width: int, step: int, data: bytes, now_s: float) -> np.ndarray:
        """Check, resize and keep a frame received at ``now_s`` (monotonic s); :class:`Rejected` saying why not."""
        self.budget.admit(now_s, f"{self.name} frame", f"{self.name} frames")
        img = check_image(encoding, height, width, step, data)
        self.image = resize_nearest(img, *self.size) if img.shape[:2] != self.size else img
        self.received_s = float(now_s)
        return self.image

    def latest(self, now_s: float) -> np.ndarray | None:
        """The latest frame, or None when there is none or it is older than ``max_age_s``."""
        if self.image is None or not now_s - self.received_s <= self.max_age_s:
            return None
        return self.image
