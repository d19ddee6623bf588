"""Per-episode filter of the `two_stage` student's estimate at act() time (issue 20; ``policy.estimate_filter``).

The perception estimates the named cube and the named place relative to the TCP from each frame alone. Measured
on the FR3 student's held-out episodes (session 13): its place error has tails (p90 57 mm, p99 240 mm; 40 / 127 mm
median / p90 on the frames where the arm hides part of the pad from the scene camera, 23 / 54 where it does not),
and the estimate jumps between frames (9.7 mm median while the cube is carried). But the pad never moves, and a
held cube moves with the TCP. So in the frame where each is at rest, the median of the episode's recent estimates
keeps the good frames' answer through the tail frames:

- the place: median of the last ``place_frames`` world estimates (estimate + TCP; 0 = every frame since the reset);
- the cube (``cube_frames`` > 0): while the gripper is closed (the cube held, so fixed in the TCP frame), the median
  of its last ``cube_frames`` estimates since the grasp; while open, as estimated (a world-frame median there lagged
  the wrist's refinement on the approach: never lifted 4 -> 8-10 of 100 on seed=3000). The history restarts at each
  grasp, so a release is followed at once.

With ``presence_min`` > 0 (``policy.place_presence``), the place's median takes, of the last ``place_frames``
frames, only those whose scene pad map is peaked enough: where the arm hides part of the pad the map picks a wrong
blob and its peakedness drops (median 1.53 vs 2.13; its lowest decile is 2.9 cells off). Where none of them passes
(or the presence is NaN), all of them: the filter without the gate. The window stays the last ``place_frames``
frames, so a gated median never reaches further back in time than the ungated one.

State lives from one :meth:`reset` to the next: the caller resets at each episode start (a new table must not
inherit the last one's estimate); `TwoStagePolicy.reset_episode` does, and the deployment's scheduler calls it.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

# The gripper's opening (m) below which the cube counts as held: the FR3 opens to 80 mm, closes on a cube at 35-50.
CLOSED_M = 0.065
# "Every frame" keeps at most this many (10 s at 25 Hz): the median's cost stays bounded in a long episode.
MAX_FRAMES = 250


class EstimateFilter:
    """``(estimate (1, 6) dm, tcp (1, 3) dm, opening m) -> filtered (1, 6) dm``, one call per act()."""

    def __init__(self, place_frames: int, cube_frames: int, presence_min: float = 0.0) -> None:
        if place_frames < 0 or cube_frames < 0 or not presence_min >= 0:
            raise ValueError(f"estimate filter frames must be >= 0 and presence_min >= 0, got place {place_frames}, "
                             f"cube {cube_frames}, presence_min {presence_min}")  # fmt: skip
        self.place_frames, self.cube_frames, self.presence_min = place_frames, cube_frames, presence_min
        self.reset()

    def reset(self) -> None:
        """Forget every frame (episode start)."""
        self._place: deque[Tensor] = deque(maxlen=self.place_frames or MAX_FRAMES)
        self._presence: deque[float] = deque(maxlen=self.place_frames or MAX_FRAMES)
        self._cube: deque[Tensor] = deque(maxlen=self.cube_frames or 1)
        self._held = False

    def __call__(self, estimate: Tensor, tcp: Tensor, opening: float, presence: float | None = None) -> Tensor:
        """``presence``: this frame's scene pad-map peakedness (needed with ``presence_min`` > 0)."""
        # float64: the world round trip (estimate + TCP - TCP) adds no rounding of note
        if self.presence_min and presence is None:
            raise ValueError("EstimateFilter with presence_min > 0 needs each frame's pad presence")
        est, tcp = estimate[0].double(), tcp[0].double()
        self._place.append(est[3:] + tcp)  # world (dm)
        if self.presence_min:
            self._presence.append(float(presence))
            confident = [p for p, c in zip(self._place, self._presence) if c >= self.presence_min]  # NaN: not
            place = _median(confident or self._place) - tcp
        else:
            place = _median(self._place) - tcp
        cube = est[:3]
        if self.cube_frames:
            held = opening < CLOSED_M
            if held and not self._held:  # a new grasp: the last hold's frames do not carry over
                self._cube.clear()
            self._held = held
            if held:  # TCP frame: the held cube rides in the hand
                self._cube.append(cube)
                cube = _median(self._cube)
        return torch.cat([cube, place]).to(estimate.dtype)[None]


def _median(frames: deque[Tensor] | list[Tensor]) -> Tensor:
    """Per coordinate: the median of the frames (the mean of the two middle ones for an even count)."""
    return torch.stack(list(frames)).quantile(0.5, dim=0)
