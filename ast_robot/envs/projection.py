"""Where world points appear in the scene camera's image: supervision for a pixel student's object finder.

``image_coords(env, points)`` projects world points (N, 3) through the env's scene camera (its randomized
pose of this episode) to normalized image coordinates (N, 2) = (row, col), each -1 at the first pixel
centre of a half-resolution grid and +1 at the last (the grid of the soft-argmax in
:class:`~ast_robot.policies.encoders.ScenePerception`). A privileged training signal, like the scripted
expert: recorded in demonstrations, never a policy input.
"""

from __future__ import annotations

import math

import numpy as np

CAMERA = "scene"  # the MJCF camera the observation renders (envs/scenes/table.xml)


def pixel_coords(env, points: np.ndarray, camera: str = CAMERA, size: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 2) continuous pixel coordinates (row, col; 0 at the image's top-left corner, pixel k spans
    [k, k + 1]) of world ``points`` (N, 3) in ``camera`` (default the scene camera) of an image ``size``
    (default ``camera_size``). MuJoCo cameras look along their -z axis with +y up; ``fovy`` is the vertical
    field of view. A point behind the camera gets NaN."""
    u = env.unwrapped
    cam = u.model.camera(camera)
    pos, rot = u.data.cam_xpos[cam.id], u.data.cam_xmat[cam.id].reshape(3, 3)
    local = (np.atleast_2d(points) - pos) @ rot  # (N, 3) in the camera frame (columns of rot = axes)
    height, width = u.cfg.camera_size if size is None else size
    focal = 0.5 * height / math.tan(math.radians(float(u.model.cam_fovy[cam.id])) / 2)
    depth = np.where(local[:, 2] < 0, -local[:, 2], np.nan)
    col = width / 2 + focal * local[:, 0] / depth
    row = height / 2 - focal * local[:, 1] / depth
    return np.stack([row, col], -1)


def image_coords(env, points: np.ndarray, camera: str = CAMERA, size: tuple[int, int] | None = None) -> np.ndarray:
    """(N, 2) normalized (row, col) on the half-resolution soft-argmax grid: -1 + (c - 1) / (size / 2 - 1)."""
    height, width = env.unwrapped.cfg.camera_size if size is None else size
    rc = pixel_coords(env, points, camera, size)
    return np.stack([-1 + (rc[:, 0] - 1) / (height / 2 - 1), -1 + (rc[:, 1] - 1) / (width / 2 - 1)], -1)
