"""Workspace constants shared by the envs, the deployment's action mapping and its safety limits.

Positions are in the robot's mounting frame (world = ROS ``base_link``); the table top is z = 0.
"""

from __future__ import annotations

import numpy as np

R_DOWN = np.diag([1.0, -1.0, -1.0])  # TCP pointing down, fingers closing along world y
WORKSPACE_LOW = np.array([0.2, -0.4, 0.0])  # TCP box (m, world); the table top is z = 0
WORKSPACE_HIGH = np.array([0.75, 0.4, 0.5])
