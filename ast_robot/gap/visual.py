"""Visual gap of pick-and-place: the real camera's frames against re-rendered frames of the same scenes.

A frame is compared only where its scene is known: before the hand first closes in an episode the cubes
rest where the table put them (:mod:`ast_robot.gap.pick_table`) and the arm is where the record measured it
at that moment (the frame's time from the episode's start, in control ticks), so the simulator renders the
same scene with the nominal look (straight-down light at intensity 1, the camera aimed at the workspace, no
colour shift: the deployed camera's nominal model) and the real frame's difference is the visual gap.

Statistics first: per-channel means and brightness of real and nominal frames, and the pixel RMS between
them against :data:`FLOOR_LEVELS` (uint8 levels; the nominal twin's re-render is pixel-identical, 0 levels).
When the gap is above the floor, candidate looks are re-rendered and fitted by coordinate search over
light intensity, camera offset (m) and rotation (deg), with the per-channel colour shift solved in closed
form for each candidate (the mean residual per channel). A look group (light, camera pose, colour shift) is
named when it alone removes at least :data:`MIN_SHARE` of the nominal pixel loss and putting only it back at
nominal in the fit costs at least as much (so a group that merely compensates for another, e.g. a colour
shift that darkens for a dim light, is not named); what the fit leaves is reported as unexplained.

The wrist camera's frames (``camera="wrist"``) go through the same with its own floor
(:data:`WRIST_FLOOR_LEVELS`) and looks: the light, its mount (searched re-aimed: :mod:`ast_robot.gap.visual_wrist`)
and its own colour shift. Frames are placed in their episodes by :mod:`ast_robot.gap.visual_frames`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ast_robot.gap import visual_wrist as wrist_look
from ast_robot.gap.visual_frames import Frame, episode_frames, episode_spans, frames_of_episode  # noqa: F401 (API)

# uint8 levels RMS below which the frames match their re-renders: the nominal twin reads 0.0 with exact joints,
# 0.67-0.87 with 0.5 mrad joint noise (the arm and its shadow rendered at a noisy pose; leaving the robot's own
# pixels out took it only to 0.67, the shadows stay); the bench's looks read 10 (colour cast) to 54 levels
FLOOR_LEVELS = 2.0
# the wrist camera's floor: its frames on twins whose wrist camera is nominal read 5.5, 5.8 and 7.4 levels RMS
# against their re-renders (the session-8 loop bags of the nominal, colour-cast and scene-camera twins, 20 frames
# each): a few pixels at cube and finger edges (~7 of 4096 in a frame) flip between cube or finger and table
# colours (the camera is ~0.1-0.2 m from them); the 1 cm / 6 deg re-mount and the x0.45 light read 27
WRIST_FLOOR_LEVELS = 10.0
MIN_SHARE = 0.10  # a visual parameter is named when it alone removes this share of the nominal pixel loss
MAX_FRAMES = 24  # frames compared at most (evenly spread over the usable ones): bounds the fit's renders
MAX_UNEXPLAINED = 0.25  # more of the nominal loss left after the fit: "a visual gap the fit does not explain"
# parameter -> (nominal, search low, search high, scan points); camera rotations in deg, offsets in m
SEARCH = {"light_intensity": (1.0, 0.3, 1.6, 14),
          "camera_dx": (0.0, -0.05, 0.05, 11), "camera_dy": (0.0, -0.05, 0.05, 11),
          "camera_dz": (0.0, -0.05, 0.05, 11), "camera_roll": (0.0, -6.0, 6.0, 13),
          "camera_pitch": (0.0, -6.0, 6.0, 13), "camera_yaw": (0.0, -6.0, 6.0, 13)}  # fmt: skip
SHIFT = ("colour_shift_r", "colour_shift_g", "colour_shift_b")  # fractions of full scale, added per channel
GROUPS = {"light_intensity": ("light_intensity",), "colour_shift": SHIFT,
          "camera_pose": ("camera_dx", "camera_dy", "camera_dz", "camera_roll", "camera_pitch", "camera_yaw")}  # fmt: skip
# the wrist camera (its frames on the deploy YAML's wrist_camera topic): the same light, its own mount (m in the
# gripper frame, deg about its own axes, as the envs' visual_wrist_* jitter and the twin's hidden mount move it;
# the envs jitter +-4 mm / +-2 deg) and its own colour shift
# (searched as a camera re-aimed at its aim point: ast_robot.gap.visual_wrist says why)
# (the mount first: searched after the light, a first pass fitted a compensating x0.87 light to the re-mount twin)
WRIST_SEARCH = {**wrist_look.SEARCH, "light_intensity": SEARCH["light_intensity"]}
WRIST_GROUPS = {"light_intensity": ("light_intensity",), "wrist_colour_shift": SHIFT, "wrist_pose": wrist_look.POSE}
LOOKS = {"scene": (SEARCH, GROUPS), "wrist": (WRIST_SEARCH, WRIST_GROUPS)}  # camera -> (search, groups)


@dataclass
class VisualResult:
    """Image statistics, the fitted look and what is named (``culprits``: look groups, most explaining first)."""

    n_frames: int
    real_means: tuple[float, float, float]  # per-channel mean (0..255) of the real frames
    sim_means: tuple[float, float, float]  # of the nominal re-renders of the same scenes
    rms_nominal: float  # uint8 levels RMS, real vs nominal re-render
    rms_fit: float  # real vs the fitted look's re-render
    fitted: dict[str, float] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)  # group -> share of the nominal loss it alone removes
    drops: dict[str, float] = field(default_factory=dict)  # group -> share the fit loses with it back at nominal
    culprits: tuple[str, ...] = ()
    unexplained: float = 0.0  # share of the nominal loss left after the fit
    note: str = ""
    camera: str = "scene"  # which camera's frames: "scene" or "wrist"
    wrist: VisualResult | None = None  # the scene camera's result holds the wrist camera's (None: no wrist frames)

    def all_culprits(self) -> tuple[str, ...]:
        """This camera's named groups, then the wrist camera's not already named (the light is shared)."""
        extra = () if self.wrist is None else tuple(g for g in self.wrist.culprits if g not in self.culprits)
        return self.culprits + extra

    def floor(self) -> float:
        """uint8 levels RMS below which this camera's frames match their re-renders."""
        return WRIST_FLOOR_LEVELS if self.camera == "wrist" else FLOOR_LEVELS

    def gap(self) -> bool:
        return self.rms_nominal > self.floor()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LookRenderer:
    """Renders a pick-and-place camera of ``robot`` (``camera``: "scene", or "wrist": the envs' camera on the
    gripper) for a frame's state under a candidate look."""

    def __init__(self, robot: str, size: tuple[int, int], camera: str = "scene") -> None:
        import mujoco

        from ast_robot.envs import visual_randomization as visual
        from ast_robot.envs import wrist
        from ast_robot.robot.scene import build_spec
        from ast_robot.robot.specs import get_robot

        if camera not in LOOKS:
            raise ValueError(f"camera: expected one of {sorted(LOOKS)}, got {camera!r}")
        self._mj, self._visual, self._wrist = mujoco, visual, wrist
        self.spec = get_robot(robot)
        spec = build_spec(self.spec, "pickplace", n_objects=2, n_pads=2)
        if camera == "wrist":
            wrist.add_wrist_camera(spec)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.nom = visual.nominal(self.model)
        self.wrist_nom = wrist.nominal(self.model) if camera == "wrist" else None
        self.wrist_geometry = wrist_look.WristGeometry(self.model) if camera == "wrist" else None
        self.camera_id = self.nom.camera if camera == "scene" else self.wrist_nom.camera
        self._light = self.model.light_diffuse[self.nom.light].copy()
        self._cam_pos = self.model.cam_pos[self.nom.camera].copy()
        self.qadr = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in self.spec.joint_names])
        self.fingers = np.array([self.model.jnt_qposadr[self.model.joint(j).id] for j in self.spec.gripper_joints])
        self.cubes = [int(self.model.jnt_qposadr[self.model.body(f"object{i}").jntadr[0]]) for i in range(2)]
        self.renderer = mujoco.Renderer(self.model, height=size[0], width=size[1])
        self.mask: np.ndarray | None = None  # (N, H, W, 1) pixels compared (see _still)

    def close(self) -> None:
        self.renderer.close()

    def look(self, values: dict[str, float]) -> None:
        """Write a candidate look (light intensity, camera offset and rotation) over the nominal model."""
        self.model.light_diffuse[self.nom.light] = self._light
        self.model.cam_pos[self.nom.camera] = self._cam_pos
        params = {"visual_light_tilt": 0.0, "visual_light_azimuth": 0.0,
                  "visual_light_intensity": values.get("light_intensity", 1.0)}  # fmt: skip
        for element, rgb in self.nom.scenery_rgb.items():
            params.update({f"visual_{element}_{c}": float(v) for c, v in zip("rgb", rgb)})
        params.update({f"visual_camera_d{a}": values.get(f"camera_d{a}", 0.0) for a in "xyz"})
        params.update({f"visual_camera_{a}": values.get(f"camera_{a}", 0.0) for a in ("roll", "pitch", "yaw")})
        self._visual.apply(self.model, params, self.nom)
        if self.wrist_nom is not None:  # the nominal mount, or the searched one in the envs' jitter terms
            pose = any(values.get(n, 0.0) for n in wrist_look.POSE)
            self._wrist.apply(self.model, self.wrist_geometry.mount(values) if pose else {}, self.wrist_nom)

    def render(self, frame: Frame) -> np.ndarray:
        """(H, W, 3) float image of ``frame``'s scene under the current look (no colour shift)."""
        from ast_robot.envs.instructions import COLOURS
        from ast_robot.robot.scene import OBJECT_HALF_SIZE

        m, d = self.model, self.data
        d.qpos[:] = m.qpos0
        d.qpos[self.qadr] = frame.q
        d.qpos[self.fingers] = (float(self.spec.gripper_width[1]) if frame.opening is None else frame.opening) / 2.0
        t = frame.table
        for i, (adr, (x, y, yaw)) in enumerate(zip(self.cubes, t.objects)):
            d.qpos[adr : adr + 7] = [x, y, OBJECT_HALF_SIZE, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
            if i < len(t.colours[0]) and t.colours[0][i] in COLOURS:
                m.geom_rgba[m.geom(f"object{i}").id, :3] = COLOURS[t.colours[0][i]]
        for j, (x, y) in enumerate(t.pads):
            m.site_pos[m.site(f"pad{j}").id, :2] = (x, y)
            if j < len(t.colours[1]) and t.colours[1][j] in COLOURS:
                m.site_rgba[m.site(f"pad{j}").id, :3] = COLOURS[t.colours[1][j]]
        self._mj.mj_forward(m, d)
        self.renderer.update_scene(d, camera=self.camera_id)
        return self.renderer.render().astype(np.float64)


def analyze_frames(robot: str, frames: Sequence[Frame], camera: str = "scene") -> VisualResult:
    """Statistics and the fitted look of ``frames`` of ``camera`` (see the module docstring)."""
    if not frames:
        return VisualResult(0, (0.0,) * 3, (0.0,) * 3, 0.0, 0.0, note="no camera frame with a known scene",
                            camera=camera)  # fmt: skip
    if len(frames) > MAX_FRAMES:
        frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, MAX_FRAMES).round()]
    search, groups = LOOKS[camera]
    renderer = LookRenderer(robot, frames[0].image.shape[:2], camera)
    try:
        renderer.mask = None
        renderer.look({})
        renderer.mask = np.stack([_still(renderer, f) for f in frames])  # (N, H, W, 1)
        real = np.stack([f.image.astype(np.float64) for f in frames])  # (N, H, W, 3)
        nominal = _renders(renderer, frames, {})
        base = _loss(real, nominal, shift=False, mask=renderer.mask)
        result = VisualResult(len(frames), _means(real), _means(nominal), float(np.sqrt(base)), float(np.sqrt(base)),
                              camera=camera)  # fmt: skip
        if not result.gap():
            result.note = f"frames match their nominal re-renders within {result.floor():g} levels RMS"
            return result
        values = _coordinate_search(renderer, frames, real, search, passes=6 if camera == "wrist" else 4,
                                    pattern=camera == "wrist")  # fmt: skip
        fitted_renders = _renders(renderer, frames, values)
        shift = _shift(real, fitted_renders, renderer.mask)
        values.update({n: float(s) / 255.0 for n, s in zip(SHIFT, shift)})
        if renderer.wrist_geometry is not None:  # the fitted turn in the envs' jitter terms too (for a retune)
            values.update(wrist_look.mount_of(renderer.wrist_geometry, values))
        loss_fit = _loss(real, fitted_renders, shift=True, mask=renderer.mask)
        result.rms_fit, result.fitted = float(np.sqrt(loss_fit)), values
        result.shares, result.drops = _group_shares(renderer, frames, real, values, base, search, groups)
        result.unexplained = max(0.0, loss_fit - result.floor() ** 2) / base
        named = sorted((g for g, s in result.shares.items() if s >= MIN_SHARE and result.drops[g] >= MIN_SHARE),
                       key=lambda g: -result.shares[g])  # fmt: skip
        result.culprits = () if result.unexplained > MAX_UNEXPLAINED else tuple(named)
        return result
    finally:
        renderer.close()


def _still(renderer: LookRenderer, frame: Frame) -> np.ndarray:
    """(H, W, 1) True where the nominal render does not change when the arm is where it was one control tick
    earlier or later: the frame's exposure moment within the tick is not recorded (the twin's renderer shows
    the pose of the last physics step), so pixels of the moving arm's edges are left out of the comparison."""
    here = renderer.render(frame)
    still = np.ones(here.shape[:2], dtype=bool)
    for q in frame.around:
        other = renderer.render(Frame(frame.image, q, frame.table, opening=frame.opening))
        still &= np.all(np.abs(other - here) < 1.0, axis=-1)
    return still[..., None]


def _renders(renderer: LookRenderer, frames: Sequence[Frame], values: dict[str, float]) -> np.ndarray:
    """Renders of ``frames`` under ``values``; pixels outside the renderer's mask copy the real frame (no error)."""
    renderer.look(values)
    out = np.stack([renderer.render(f) for f in frames])
    if renderer.mask is not None:
        real = np.stack([f.image.astype(np.float64) for f in frames])
        out = np.where(renderer.mask, out, real)
    return out


def _shift(real: np.ndarray, sim: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-channel additive shift (levels) that best maps ``sim`` onto ``real`` (compared pixels not clipped)."""
    ok = (real > 0) & (real < 255) & (True if mask is None else mask)
    diff = np.where(ok, real - sim, 0.0)
    return diff.sum(axis=(0, 1, 2)) / np.maximum(ok.sum(axis=(0, 1, 2)), 1)


def _loss(real: np.ndarray, sim: np.ndarray, shift: bool, mask: np.ndarray | None = None) -> float:
    """Mean squared pixel error (levels^2) over the compared pixels (``mask``); with ``shift``, after the best
    colour shift, clipped as a camera does."""
    if shift:
        sim = np.where(True if mask is None else mask, np.clip(sim + _shift(real, sim, mask), 0, 255), sim)
    return float(np.mean((real - sim) ** 2))


def _coordinate_search(renderer: LookRenderer, frames: Sequence[Frame], real: np.ndarray,
                       search: dict = SEARCH, passes: int = 4, pattern: bool = False) -> dict[str, float]:  # fmt: skip
    """Each look parameter in turn over its grid (the others held), colour shift profiled out; each later
    pass searches a grid half as wide around the current value (light and camera pose trade off: a first
    pass with the camera still wrong fits a compensating light, the later ones undo it). ``pattern``: after
    each pass, also along that pass's whole move (Hooke-Jeeves): it follows a diagonal valley that steps
    along the axes cross only by small steps (the wrist camera's shift against its turn)."""
    values = {n: spec[0] for n, spec in search.items()}
    best = _loss(real, _renders(renderer, frames, values), shift=True, mask=renderer.mask)
    for p in range(passes):
        before = dict(values)
        for name, (_, low, high, points) in search.items():
            half = 0.5 * (high - low) / (2**p)
            centre = values[name] if p else 0.5 * (low + high)
            for v in np.linspace(max(low, centre - half), min(high, centre + half), points):
                trial = {**values, name: float(v)}
                loss = _loss(real, _renders(renderer, frames, trial), shift=True, mask=renderer.mask)
                if loss < best:
                    best, values = loss, trial
        if pattern and p:  # the first pass starts from the nominal look: its move is not yet a direction
            best, values = _pattern_move(renderer, frames, real, search, before, values, best)
    return values


def _pattern_move(renderer: LookRenderer, frames: Sequence[Frame], real: np.ndarray, search: dict,
                  before: dict[str, float], values: dict[str, float], best: float) -> tuple[float, dict[str, float]]:  # fmt: skip
    """The best of ``values`` moved on along ``values - before`` by 0.5-4 times that move (inside the grids)."""
    start = dict(values)
    for t in (0.5, 1.0, 2.0, 4.0):
        trial = {n: float(np.clip(start[n] + t * (start[n] - before[n]), search[n][1], search[n][2])) for n in search}
        loss = _loss(real, _renders(renderer, frames, trial), shift=True, mask=renderer.mask)
        if loss < best:
            best, values = loss, trial
    return best, values


def _group_shares(renderer: LookRenderer, frames: Sequence[Frame], real: np.ndarray, values: dict[str, float],
                  base: float, search: dict = SEARCH, groups: dict = GROUPS) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """Per look group: the share of the nominal loss it removes alone (the rest nominal), and the share the
    fit loses when only it goes back to nominal (a group that merely compensates for another loses little)."""
    shares, drops = {}, {}
    shift_back = dict.fromkeys(SHIFT, 0.0)
    fitted = _loss_at(renderer, frames, real, values)
    for group, names in groups.items():
        alone = {n: values[n] for n in names}
        shares[group] = (base - _loss_at(renderer, frames, real, {**alone, **({} if names == SHIFT else shift_back)})) / base
        dropped = {**values, **{n: search[n][0] if n in search else 0.0 for n in names}}
        drops[group] = (_loss_at(renderer, frames, real, dropped) - fitted) / base
    return shares, drops


def _loss_at(renderer: LookRenderer, frames: Sequence[Frame], real: np.ndarray, values: dict[str, float]) -> float:
    """Pixel loss of a complete look, its colour shift (fractions of full scale) applied as given."""
    sim = _renders(renderer, frames, values)
    shift = np.array([values.get(n, 0.0) for n in SHIFT]) * 255.0
    sim = np.where(True if renderer.mask is None else renderer.mask, np.clip(sim + shift, 0, 255), sim)
    return float(np.mean((real - sim) ** 2))


def _means(images: np.ndarray) -> tuple[float, float, float]:
    m = images.reshape(-1, 3).mean(axis=0)
    return float(m[0]), float(m[1]), float(m[2])
