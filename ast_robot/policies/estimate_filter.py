"""Per-episode filter of the `two_stage` student's estimate at act() time (issue 20; ``policy.estimate_filter``).

The perception estimates the named cube and the named place relative to the TCP from each frame alone. Measured
on the FR3 student's held-out episodes (session 13): its place error has tails (p90 57 mm, p99 240 mm; 40 / 127 mm
median / p90 on the frames where the arm hides part of the pad from the scene camera, 23 / 54 where it does not),
and the estimate jumps between frames. But the pad never moves, and a cube does not move while it rests (the
gripper open) and moves with the TCP while it is held (closed). So in the frame where each is at rest, the
median of the episode's recent estimates keeps the good frames' answer through the tail frames:

- the place: median of the last ``place_frames`` world estimates (estimate + TCP; 0 = every frame since the reset);
- the cube (``cube_frames`` > 0): median of its last ``cube_frames`` estimates, in the world frame while the gripper
  is open (the cube rests) and in the TCP frame while it is closed (the cube is held); the history restarts at each
  open/closed switch, so a grasp or a release is followed at once.

State lives from one :meth:`reset` to the next: the caller resets at each episode start (a new table must not
inherit the last one's estimate); `TwoStagePolicy.reset_episode` does, and the deployment's scheduler calls it.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

CLOSED_M = (
    0.065  # the gripper's opening (m) below which the cube counts as held: FR3 open 80 mm, on a cube 35-50
)
MAX_FRAMES = 250  # "every frame" keeps at most this many (10 s at 25 Hz): the median's cost stays bounded


class EstimateFilter:
    """``(estimate (1, 6) dm, tcp (1, 3) dm, opening m) -> filtered (1, 6) dm``, one call per act()."""

    def __init__(self, place_frames: int, cube_frames: int) -> None:
        if place_frames < 0 or cube_frames < 0:
            raise ValueError(
                f"estimate filter frames must be >= 0, got place {place_frames}, cube {cube_frames}"
            )
        self.place_frames, self.cube_frames = place_frames, cube_frames
        self.reset()

    def reset(self) -> None:
        """Forget every frame (episode start)."""
        self._place: deque[Tensor] = deque(maxlen=self.place_frames or MAX_FRAMES)
        self._cube: deque[Tensor] = deque(maxlen=self.cube_frames or 1)
        self._held: bool | None = None

    def __call__(self, estimate: Tensor, tcp: Tensor, opening: float) -> Tensor:
        est, tcp = (
            estimate[0].double(),
            tcp[0].double(),
        )  # float64: the world round trip adds no rounding of note
        self._place.append(est[3:] + tcp)  # world (dm)
        place = _median(self._place) - tcp
        cube = est[:3]
        if self.cube_frames:
            held = opening < CLOSED_M
            if (
                held != self._held
            ):  # grasp or release: the cube's frame changes, its history does not carry over
                self._cube.clear()
                self._held = held
            self._cube.append(cube if held else cube + tcp)  # TCP frame while held, world frame while resting
            cube = _median(self._cube) - (0 if held else tcp)
        return torch.cat([cube, place]).to(estimate.dtype)[None]


def _median(frames: deque[Tensor]) -> Tensor:
    """Per coordinate: the median of the frames (the mean of the two middle ones for an even count)."""
    return torch.stack(list(frames)).quantile(0.5, dim=0)
