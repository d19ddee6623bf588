"""Environment (task + robot) configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import doc


@dataclass
class EnvConfig:
    """Which simulated task to build and how it is observed and controlled."""

    id: str = doc("ast_robot/ReachUR5e-v0", "Gymnasium id, `ast_robot/<Task><Robot>-v<N>`.")
    robot_model: Literal["primitive", "menagerie"] = doc(
        "primitive", "Robot model source: MJCF authored here from data sheets, or mujoco-menagerie (needs its files)."
    )
    control_hz: float = doc(25.0, "Policy/control rate (Hz): the physics rate (500 Hz) divided by a whole number "
                            "of substeps (500, 250, 125, 100, 50, 25, ...); others are an error.", gt=0)  # fmt: skip
    max_episode_steps: int = doc(50, "Episode length limit (control steps).", gt=0)
    action_mode: Literal["ee_delta", "joint_delta"] = doc(
        "ee_delta", "Action space: end-effector delta position (+ gripper) through IK, or joint position deltas."
    )
    max_ee_step: float = doc(0.05, "End-effector displacement for an action of 1.0 (m per control step).", gt=0)
    max_joint_step: float = doc(0.1, "Joint displacement for an action of 1.0 (rad per control step).", gt=0)
    camera: bool = doc(False, "Add a uint8 HxWx3 `camera` observation from the scene camera.")
    camera_size: tuple[int, int] = doc((64, 64), "Camera image (height, width) in pixels.")
    instruction: bool = doc(False, "Add a language `instruction` observation (bytes, padded).")
    wrist_camera: bool = doc(False, "Pick-and-place: add a uint8 HxWx3 `wrist_camera` observation from a camera on "
                             "the gripper (as a flange-mounted RealSense), looking down past the fingers; with "
                             "`observation: deploy` the layout is `pickplace-deploy-wrist-v1`.")  # fmt: skip
    wrist_camera_size: tuple[int, int] = doc((64, 64), "Wrist camera image (height, width) in pixels.")
    instruction_length: int = doc(64, "Maximum instruction length (bytes); longer ones are an error.", gt=0)
    reward_type: Literal["sparse", "dense"] = doc("sparse", "Sparse (-1 until success, 0 after) or dense shaping.")
    reward_scales: dict[str, float] = doc(
        factory=dict, help="Scale per named reward term (term -> scale); unset terms use the task's defaults."
    )
    success_threshold: float = doc(0.05, "Success distance (m): end effector (reach) or object (pick-place).", gt=0)
    n_objects: int = doc(3, "Pick-and-place: coloured cubes on the table; one of them is the target.", ge=1, le=8)
    n_pads: int = doc(2, "Pick-and-place: coloured place pads; one of them is the goal.", ge=1, le=4)
    observation: Literal["privileged", "deploy"] = doc(
        "privileged", "Pick-and-place observation layout (v1 each). `privileged`: proprioception + cube positions + "
        "goals (the teacher's; default). `deploy`: what a real cell has, proprioception + `camera` + `instruction` "
        "only, no object or pad positions (needs camera, instruction, n_objects >= 2 and n_pads >= 2); the goals "
        "move to info['achieved_goal'] / info['desired_goal'] for rewards and analysis."
    )
    ik_iterations: int = doc(1, "Damped-least-squares iterations per control step (ee_delta actions).", ge=1)
    deploy_pipeline: bool = doc(False, "Train as you deploy: run each control step as the deployment does "
                                "(ast_robot.envs.pipeline: deploy.control_hz ticks of TCP target integration, "
                                "the safety module's speed, acceleration and lead limits, the trajectory "
                                "controller's segments), with the experiment's `deploy` settings. false: the "
                                "servo target steps once per control step.")  # fmt: skip
