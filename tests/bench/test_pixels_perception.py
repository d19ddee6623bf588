"""bench/pixels_perception.py's instrument: zero error for a perfect estimate, the null row for zeros (issue 20)."""

from __future__ import annotations

import torch

from bench.pixels_perception import errors


class _Fixed:
    """A stand-in policy whose perception returns fixed estimates (what `errors` reads: perceive,
    relative_truth, pixel_scale, eval)."""

    pixel_scale = 15.5

    def __init__(self, estimate: torch.Tensor, truth: torch.Tensor, xy: torch.Tensor) -> None:
        self.estimate, self.truth, self.xy = estimate, truth, xy

    def eval(self) -> None:
        pass

    def perceive(self, scenes):
        return self.estimate, self.xy

    def relative_truth(self, scenes):
        return self.truth


def test_errors_are_zero_for_the_truth_and_the_truth_itself_for_the_null_estimate():
    truth = torch.tensor([[0.3, -0.4, 0.0, 1.0, 2.0, 0.0], [-0.1, 0.2, 0.5, 0.0, -1.0, 0.0]])  # dm
    pixels = torch.zeros(2, 6)
    perfect = errors(_Fixed(truth.clone(), truth, torch.zeros(2, 3, 2)), {"aux_pixels": pixels})
    assert perfect["cube_mean_cm"] == [0.0, 0.0, 0.0] and perfect["px_median_cube_place_gripper"] == [0.0] * 3
    null = errors(_Fixed(truth.clone(), truth, torch.zeros(2, 3, 2)), {"aux_pixels": pixels}, null=True)
    assert null["cube_mean_cm"] == [2.0, 3.0, 2.5]  # mean |truth| in cm
    assert null["cube_xy_mean_cm"] == 2.5 and "px_median_cube_place_gripper" not in null
    off = errors(_Fixed(truth + 0.1, truth, torch.full((2, 3, 2), 2 / 15.5)), {"aux_pixels": pixels})
    assert off["cube_mean_cm"] == [1.0, 1.0, 1.0] and off["px_median_cube_place_gripper"] == [2.83] * 3
