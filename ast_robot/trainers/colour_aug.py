"""The camera colour cast (``randomization.visual.colour_shift``) as a per-sample training augmentation.

The env draws one cast per camera and episode (uniform in +-``colour_shift`` per RGB channel, fractions of
full scale) and adds it to every pixel (:func:`ast_robot.envs.visual_randomization.colour_cast`). Demos and
scenes stored without a cast would train the student on uncast images only, however wide the loop retunes the
range; this module gives each row of a batch its own cast, drawn as the env draws it, with the env's pixel
arithmetic (float64 add of ``shift * 255``, clip to [0, 255], truncate to uint8: bit for bit the same).

Draws come from torch's global generator, whose state every trainer checkpoint holds
(:func:`ast_robot.core.checkpoint.rng_state`), so a resumed run draws what the uninterrupted one drew. With a
range of 0 nothing is drawn and the batch is the stored images themselves. The env casts before its pixel
noise; stored images carry their noise already, so here the cast comes after it (they differ only where a
pixel clips at 0 or 255).
"""

from __future__ import annotations

from typing import Any

import torch

from ast_robot.envs.visual_randomization import CAST, WRIST_CAST
from ast_robot.envs.wrist import WRIST_KEY

# observation key -> the info["dr"] prefix of the env's cast of that camera (each camera draws its own)
CAST_PREFIX = {"camera": CAST, WRIST_KEY: WRIST_CAST}


def casts_drawn(rand: Any) -> float:
    """The cast range (fraction) the env draws under randomization config ``rand`` (0: it draws none), as
    ``sample_colour_shift`` decides: randomization on, visual randomization on, ``colour_shift`` > 0."""
    if not rand.enabled or not rand.visual.enabled:
        return 0.0
    return float(rand.visual.colour_shift)


def draw_casts(n: int, limit: float) -> torch.Tensor:
    """(n, 3) float64 casts uniform in [-limit, limit) per channel, from torch's global generator."""
    return torch.rand(n, 3, dtype=torch.float64) * (2.0 * limit) - limit


def cast_images(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``images`` (B, H, W, 3) uint8, each plus its own ``shifts`` row (B, 3) x 255, clipped, truncated to uint8:
    ``colour_cast(images[i], shifts[i])`` for every i (the same float64 operations)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"colour cast: images must be (B, H, W, 3) uint8, got {tuple(images.shape)} {images.dtype}")
    out = images.to(torch.float64) + shifts.to(images.device, torch.float64)[:, None, None, :] * 255.0  # (B, H, W, 3)
    return out.clamp_(0.0, 255.0).to(torch.uint8)


def augment(inputs: dict[str, torch.Tensor], limit: float, done: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``inputs`` with every camera image (scene, then wrist: the env's order) cast per row; rows whose
    ``done[key]`` is True (recorded under a cast already) keep their image. Draws happen only when ``limit`` > 0."""
    if limit <= 0:
        return inputs
    out = dict(inputs)
    for key in CAST_PREFIX:
        if key not in inputs:
            continue
        shifts = draw_casts(len(inputs[key]), limit)
        if key in done:
            shifts[done[key]] = 0.0  # drawn anyway: the generator's use does not depend on which rows were cast
        out[key] = cast_images(inputs[key], shifts)
    return out


def cast_done_rows(episodes: list[Any], keys: list[str]) -> dict[str, torch.Tensor]:
    """Per camera key of ``keys``: (steps,) bool, True on the steps of episodes whose ``dr`` holds that camera's
    cast (recorded under a cast: another cast on top would double it)."""
    out = {}
    for key, prefix in CAST_PREFIX.items():
        if key in keys:
            flags = [torch.full((len(e),), f"{prefix}_r" in e.dr, dtype=torch.bool) for e in episodes]
            out[key] = torch.cat(flags) if flags else torch.zeros(0, dtype=torch.bool)
    return out
