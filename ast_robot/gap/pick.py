"""The gap of pick-and-place: physical identification from the replayed arm, gripper and cube, the visual
look from the camera's frames, and what is retuned from both.

Physical: :class:`~ast_robot.gap.pick_replay.PickReplay` replays each real episode (its table, its commanded
joint targets and gripper commands) and :func:`ast_robot.gap.sysid.fit` fits the randomized cube mass, friction
and grasp force, and the arm's command latency, to the measured arm joints, with the reach fit's absolute-scale
test and its honesty (NotIdentifiable, the unexplained residual). The cube changes the arm's joints through the hand: a heavier
cube sags the arm while carried, a weaker grasp or lower friction lets it shift in the fingers (measured on
the twin, 3 episodes: x3 mass 2e-4 rad RMS, x0.3 force 2e-5 - 7e-5, x0.3 friction 7e-5 - 2e-4; the nominal
replay matches to 6e-9 rad). The loss is rugged in these parameters (contacts), so the fit starts from a
scan of each parameter alone (``SCAN_POINTS``) before Gauss-Newton.

Finger and cube friction are one parameter here: MuJoCo's contact uses the larger of the two geoms'
frictions, so only the grip contact's friction (and the table's) is seen; the randomization's ``friction``
scales every geom, and a change of the cube's friction alone below the pads' (1.5) and the table's (1.0)
changes nothing at all (measured: bit-identical episodes).

Visual: :mod:`ast_robot.gap.visual` (needs a bag with the camera topic; a records folder has no frames).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ast_robot.gap.latency import deployment_offsets
from ast_robot.gap.sysid import NotIdentifiable, SysIdResult, fit, space_from_randomization
from ast_robot.records import EpisodeRecord

# What the pick-and-place replay can identify: the cube's physics, and the arm's command latency (the reach fit's
# parameter: the replay is MujocoReplay's setpoints with the same delay, so a twin behind 40 ms replays to 3e-15 rad
# at latency 1 and 1.4e-2 rad at 0). Without it a latency gap is left 99.95% unexplained (UR5e twin, 40 ms, one
# episode) and no latency warning can be given; with it the latency is named alone, ranked with the physical ones by
# its share of the loss, under the same absolute-scale test (gap.latency words the warning).
PICK_PARAMS = ("friction", "gripper_force", "latency", "object_mass")
# Replay floor and screen of the pick-and-place replay (rad RMS): the nominal twin replays to 2e-9 - 6e-9 rad
# (bench/gap_pickplace.py, UR5e, 3 episodes), so 1e-6 leaves a margin of 100 and keeps the smallest
# measured single-parameter effects (1.6e-5 rad RMS at x0.3 force) 16 times above it.
PICK_REPLAY_FLOOR_RAD = 1e-6
PICK_SCREEN_RAD = 1e-6
SCAN_POINTS = 15
# A parameter is named only when it alone also removes this share of the nominal loss *above the noise floor*
# (the fit applies it: ast_robot.gap.sysid.mark_min_share):
# with the twin's noise-free joints the F-test passes tiny compensations (x3 cube mass: friction 1.03 beside
# it, 1.4% of the loss alone, p < 1e-6), which a retune must not move. Above the floor, not of the whole loss:
# with 0.5 mrad joint noise a x0.3 grasp force removes 0.8% of the whole loss but most of the part above noise.
PICK_MIN_SHARE = 0.05
# visual look groups -> the randomization.visual fields that cover them
VISUAL_KEYS = {"light_intensity": "light_intensity", "camera_pose": "camera_shift / camera_rotation_deg",
               "colour_shift": "colour_shift", "wrist_pose": "wrist_shift / wrist_rotation_deg",
               "wrist_colour_shift": "colour_shift"}  # fmt: skip
COLOUR_SHIFT_CEILING = 0.5  # the config's bound on visual.colour_shift (fraction of full scale)


def pick_gap_config(gap: Any) -> Any:
    """The experiment's gap settings with the pick-and-place replay's own floor and screen."""
    return dataclasses.replace(gap, replay_floor_rad=PICK_REPLAY_FLOOR_RAD, screen_tolerance=PICK_SCREEN_RAD)


def run_pick_sysid(cfg: Any, real: Sequence[EpisodeRecord], simulator: Any, seed: int,
                   progress: Callable[[int, float], None] | None) -> tuple[SysIdResult | None, Any, str]:  # fmt: skip
    """(result, simulator, note when skipped) of the cube's physical parameters and the arm's command latency."""
    names = [n for n in PICK_PARAMS if n in cfg.randomization.params]
    if not names:
        return None, None, f"no identifiable pick-and-place parameter is randomized (identifiable: {list(PICK_PARAMS)})"
    if simulator is None:
        from ast_robot.gap.pick_replay import PickReplay

        simulator = PickReplay(real[0].robot, env_dt=1.0 / cfg.env.control_hz)
        simulator.threads = cfg.gap.replay_threads
    reasons = [simulator.replayable(r) for r in real]  # "" for an episode the replay can run
    usable = [r for r, why in zip(real, reasons) if not why]
    if not usable:
        return None, None, f"no real episode can be replayed ({'; '.join(reasons[:3])})"
    # the arm's latency prior without what the policy node adds when the env does not model it (as the reach fit)
    shift = {k: -v for k, v in deployment_offsets(cfg, real).items()}
    space = space_from_randomization(cfg.randomization, cfg.gap.search_expansion, names, shift=shift)
    try:
        result = fit(simulator, usable, space, pick_gap_config(cfg.gap), seed=seed, progress=progress,
                     scan_points=SCAN_POINTS, min_share=PICK_MIN_SHARE)  # fmt: skip
    except NotIdentifiable as err:
        return None, None, str(err)
    return dataclasses.replace(result, left_out=tuple(why for why in reasons if why)), simulator, ""


def run_visual(real_path: str | Path, real: Sequence[EpisodeRecord], sheets: Any = None) -> tuple[Any, str]:
    """(VisualResult or None, note when skipped): the camera frames of a bag against their re-renders."""
    from ast_robot.gap.visual import analyze_frames, episode_frames

    path = Path(real_path)
    if not (path.is_dir() and (path / "metadata.yaml").is_file()):
        return None, "skipped: the real records are not a bag (no camera frames to compare)"
    try:
        frames = episode_frames(real[0].robot, real, path, sheets)
    except Exception as err:  # a bag without the camera topic (recorded without --camera-rate)
        return None, f"skipped: {err}"
    if not frames:
        return None, "skipped: no camera frame falls before a grasp in an episode whose table is known"
    result = analyze_frames(real[0].robot, frames)
    result.wrist = _wrist_visual(path, real, sheets)
    return result, ""


def _wrist_visual(path: Path, real: Sequence[EpisodeRecord], sheets: Any) -> Any:
    """The wrist camera's VisualResult where the robot's deploy YAML names a wrist camera topic and the bag holds
    frames of it with a known scene (None otherwise: e.g. a scene-camera deployment)."""
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.gap.visual import analyze_frames, episode_frames
    from ast_robot.records.bag import read_bag_topics

    robot = real[0].robot
    topic = load_robot_io(robot).topics.wrist_camera
    if not topic or topic not in read_bag_topics(path):
        return None
    frames = episode_frames(robot, real, path, sheets, topic=topic)
    return analyze_frames(robot, frames, camera="wrist") if frames else None


def visual_retune(visual_cfg: Any, result: Any) -> dict[str, Any]:
    """randomization.visual fields widened to cover the fitted look of both cameras (only for named groups whose
    fitted value lies outside the training range); {} when nothing changes."""
    out: dict[str, Any] = {}
    for r in (result, getattr(result, "wrist", None)):
        for group in () if r is None else r.culprits:
            _widen(out, visual_cfg, group, r.fitted)
    return out


def _widen(out: dict[str, Any], visual_cfg: Any, group: str, fit: dict[str, float]) -> None:
    """Widen ``out`` (the fields changed so far, else ``visual_cfg``'s) to cover ``group``'s fitted look."""
    now = {**dataclasses.asdict(visual_cfg), **out}
    if group == "light_intensity":
        low, high = now["light_intensity"]
        v = fit["light_intensity"]
        if not low <= v <= high:
            out["light_intensity"] = [round(min(low, 0.9 * v), 4), round(max(high, 1.1 * v), 4)]
    elif group in ("camera_pose", "wrist_pose"):  # +-ranges: the largest fitted axis, 20% margin, the config's bound
        pre, fields, bounds = (("camera", ("camera_shift", "camera_rotation_deg"), (0.1, 15.0)) if group == "camera_pose"
                               else ("wrist_mount", ("wrist_shift", "wrist_rotation_deg"), (0.03, 10.0)))  # fmt: skip
        shift = max(abs(fit[f"{group.split('_')[0]}_d{a}"]) for a in "xyz")
        turn = max(abs(fit[f"{pre}_{a}"]) for a in ("roll", "pitch", "yaw"))
        for field, value, bound, digits in zip(fields, (shift, turn), bounds, (4, 3)):
            if value > now[field]:
                out[field] = round(min(bound, 1.2 * value), digits)
    elif group in ("colour_shift", "wrist_colour_shift"):  # one key, drawn per camera: the largest channel's cast
        cast = max(abs(fit[f"colour_shift_{c}"]) for c in "rgb")
        if cast > now["colour_shift"]:  # from the default 0 (off) too: the key turns on at 1.2 x the fit
            out["colour_shift"] = round(min(COLOUR_SHIFT_CEILING, 1.2 * cast), 4)


def visual_sentences(result: Any, note: str) -> list[str]:
    """What the camera frames say, for the verdict (the wrist camera's in a sentence of its own)."""
    if result is None:
        return [f"Camera: {note}."] if note else []
    out = [_camera_sentence("Camera", result)]
    if getattr(result, "wrist", None) is not None:
        out.append(_camera_sentence("Wrist camera", result.wrist))
    return out


def _camera_sentence(name: str, result: Any) -> str:
    if not result.n_frames:
        return f"{name}: {result.note or 'no frame'}; nothing is named."
    head = (f"{name}: {result.n_frames} real frames against re-renders of the same scenes differ by "
            f"{result.rms_nominal:.2g} levels RMS (floor {result.floor():g}); channel means real "
            f"{tuple(round(m, 1) for m in result.real_means)} vs sim {tuple(round(m, 1) for m in result.sim_means)}")  # fmt: skip
    if not result.gap():
        return head + ": no visual gap, nothing is named."
    if not result.culprits:
        what = "camera pose" if result.camera == "scene" else "mount"
        return head + (f". The fitted look leaves {result.unexplained:.0%} of it: a visual gap that light, {what} "
                       f"and colour shift do not explain; nothing is named.")  # fmt: skip
    parts = [f"{g} ({_look(result, g)}; removes {result.shares[g]:.0%} alone)" for g in result.culprits]
    return head + f". Visual shift: {'; '.join(parts)}; {result.unexplained:.0%} of it unexplained."


def _look(result: Any, group: str) -> str:
    f = result.fitted
    if group == "light_intensity":
        return f"light intensity x{f['light_intensity']:.2f}"
    if group in ("colour_shift", "wrist_colour_shift"):
        return "colour shift " + ", ".join(f"{c} {f[f'colour_shift_{c}']:+.3f}" for c in "rgb")
    if group == "wrist_pose":
        return (f"mount offset ({f['wrist_dx'] * 1000:+.0f}, {f['wrist_dy'] * 1000:+.0f}, {f['wrist_dz'] * 1000:+.0f}) mm, "
                f"rotation ({f['wrist_mount_roll']:+.1f}, {f['wrist_mount_pitch']:+.1f}, {f['wrist_mount_yaw']:+.1f}) deg")  # fmt: skip
    return (f"camera offset ({f['camera_dx'] * 1000:+.0f}, {f['camera_dy'] * 1000:+.0f}, {f['camera_dz'] * 1000:+.0f}) mm, "
            f"rotation ({f['camera_roll']:+.1f}, {f['camera_pitch']:+.1f}, {f['camera_yaw']:+.1f}) deg")  # fmt: skip


def ranked_culprits(sysid: SysIdResult | None, visual: Any) -> list[str]:
    """Physical culprits and visual groups in one list, each kind by its share of its own loss (pinned fits last)."""
    rows = []
    if sysid is not None:  # a physical fit pinned at its box's end is a bound: after every estimate
        rows += [(sysid.pinned(n), sysid.attribution[sysid.names.index(n)], n) for n in sysid.culprits()]
    if visual is not None:  # the wrist camera's groups after the scene camera's of the same name (the light)
        rows += [(False, visual.shares[g], g) for g in visual.culprits]
        wrist = getattr(visual, "wrist", None)
        rows += [(False, wrist.shares[g], g) for g in visual.all_culprits()[len(visual.culprits):]]
    return [n for _, _, n in sorted(rows, key=lambda r: (r[0], -r[1]))]
