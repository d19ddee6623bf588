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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ast_robot.gap import visual_wrist as wrist_look
from ast_robot.gap.pick_table import SheetTable, TableSheets
from ast_robot.records import EpisodeRecord

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
STAMP_EPS_S = 1e-9  # stamps are whole nanoseconds; seconds as floats compare within this
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


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8, as the camera published it
    q: np.ndarray  # (J,) arm joints at the frame's time (rad)
    table: SheetTable
    around: tuple[np.ndarray, ...] = ()  # arm joints one control tick before and after (motion mask)
    opening: float | None = None  # measured gripper opening (m) at the frame's time; None: the widest


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


def frames_of_episode(record: EpisodeRecord, images: Sequence[tuple[float, float, np.ndarray]], start_s: float,
                      table: SheetTable, measured: Callable[[float, float], Any] = lambda t, dt: None) -> list[Frame]:  # fmt: skip
    """The frames (bag time s, time taken s, image) of one episode whose scene is known: after its start and
    before the hand was first told to close (the cubes still rest where the table put them). With the record's
    ``joint_stamps`` (schema 4) both are judged by the frame's own stamp against the stamps of the record's
    joint states (``start_s`` unused); without them (older records) by the frame's receipt, ``start_s`` being
    the episode's start on the bag's clock. ``measured(taken, dt)``: the arm joints, the joints one control tick
    ``dt`` around and the gripper opening that the bag's joint states measured when the frame was taken (None:
    no joint states; the record's joints at the frame's time and the widest opening are used)."""
    closing = np.flatnonzero(np.asarray(record.actions)[:, -1] < 0.0)
    first_close = int(closing[0]) if closing.size else record.steps
    out = []
    q = record.joint_positions
    for t, taken, image in images:
        k, before_close = _row_of(record, t, taken, start_s, first_close)
        if not (0 <= k < q.shape[0] and before_close):
            continue
        state = measured(taken, record.control_dt)
        if state is None:
            out.append(Frame(np.asarray(image), q[k], table, (q[max(k - 1, 0)], q[min(k + 1, q.shape[0] - 1)])))
        else:
            out.append(Frame(np.asarray(image), state[0], table, state[1], state[2]))
    return out


def _row_of(record: EpisodeRecord, received_s: float, taken_s: float, start_s: float, first_close: int) -> tuple[int, bool]:
    """(row of the record's joint states a frame shows, whether it was taken at least a control tick before the
    hand was first told to close). By stamps: the last state stamped at or before the frame (a frame at ``t`` is
    rendered at the state of ``t``); by receipt (no stamps): the receipt's time from the start in control ticks."""
    dt = record.control_dt
    stamps = record.joint_stamps
    if stamps is None:
        elapsed = received_s - start_s
        return int(round(elapsed / dt)), elapsed < first_close * dt - dt
    k = int(np.searchsorted(stamps, taken_s + STAMP_EPS_S, side="right")) - 1
    until = stamps[min(first_close, len(stamps) - 1)] if first_close < record.steps else stamps[-1] + dt
    return k, taken_s < until - dt - STAMP_EPS_S


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


def episode_frames(robot: str, records: Sequence[EpisodeRecord], bag: Any, sheets: TableSheets | None = None,
                   topic: str | None = None) -> list[Frame]:  # fmt: skip
    """Frames of a bag's camera topic assigned to its episodes (:func:`episode_spans`); see
    :func:`frames_of_episode`. A frame's pose is the joint state stamped when it was taken, not the one at its
    receipt: on a loaded machine the recorder received frames late (a nominal bag read 11 levels RMS against the
    floor of 2 when placed by receipt)."""
    from ast_robot.records.bag import read_bag_frames

    sheets = sheets or TableSheets(robot)
    raw = read_bag_frames(bag, topic) if topic else read_bag_frames(bag)  # default: the scene camera's topic
    images = [(t * 1e-9, taken * 1e-9, img) for t, taken, img in raw]
    spans = episode_spans(records, lambda: _outcome_stamps(bag))
    measured = _measured_states(robot, bag)
    out: list[Frame] = []
    for rec, (start, end, by_stamp) in zip(records, spans):
        table = sheets.find(rec)
        if table is None:
            continue
        mine = [f for f in images if start <= f[1 if by_stamp else 0] <= end]
        out += frames_of_episode(rec, mine, start, table, measured)
    return out


def episode_spans(records: Sequence[EpisodeRecord], outcome_ends: Callable[[], list[float]]) -> list[tuple[float, float, bool]]:
    """(start s, end s, by stamp) of each record's episode. Records with ``joint_stamps`` (schema 4): the stamps
    of their first and last joint states, the clock the camera stamps its frames on, so a frame delivered late
    (after the next episode began) still falls in the episode it was taken in. Older records: each outcome
    message (``outcome_ends()``, bag times s, in order) ends an episode that began ``steps * control_dt`` before
    it, and frames are placed by their receipt (a frame received after the next start is misplaced)."""
    if records and all(r.joint_stamps is not None for r in records):
        return [(float(r.joint_stamps[0]), float(r.joint_stamps[-1]), True) for r in records]
    ends = outcome_ends()
    return [(end - r.steps * r.control_dt, end, False) for r, end in zip(records, ends)]


def _measured_states(robot: str, bag: Any) -> Callable[[float, float], Any]:
    """(time taken s, control tick s) -> (arm joints, (joints a tick before, after), gripper opening m or None)
    from the bag's joint states by their header stamps (the camera's clock); None where the bag has none."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    from ast_robot.deploy.gripper import GripperCommander
    from ast_robot.deploy.robot_io import load_robot_io
    from ast_robot.robot.specs import get_robot

    io = load_robot_io(robot)
    gripper = GripperCommander(io.gripper, tuple(get_robot(robot).gripper_width))
    store, times, arms, widths = get_typestore(Stores.ROS2_KILTED), [], [], []
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == io.topics.joint_states]
        for conn, _stamp, raw in reader.messages(connections=conns) if conns else ():  # none: rosbags reads all
            msg = store.deserialize_cdr(raw, conn.msgtype)
            by_name = dict(zip(msg.name, msg.position))
            if not all(n in by_name for n in io.joint_names):
                continue
            times.append(int(msg.header.stamp.sec) + int(msg.header.stamp.nanosec) * 1e-9)
            arms.append([by_name[n] for n in io.joint_names])
            widths.append(gripper.width_from_state(list(msg.name), list(msg.position)))
    order = np.argsort(times, kind="stable")
    times, arms = np.asarray(times)[order], np.asarray(arms, dtype=float).reshape(-1, len(io.joint_names))[order]
    widths = [widths[i] for i in order]

    def index(t: float) -> int:
        return int(np.searchsorted(times, t + 1e-9, side="right")) - 1

    def at(taken: float, dt: float) -> Any:
        i = index(taken)
        if i < 0:
            return None
        around = (arms[max(index(taken - dt), 0)], arms[max(index(taken + dt), 0)])
        return arms[i], around, widths[i]

    return at


def _outcome_stamps(bag: Any) -> list[float]:
    """Bag times (s) of the outcome messages, in order (the records' order)."""
    from rosbags.rosbag2 import Reader

    from ast_robot.config.deploy import RosNames

    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == RosNames().outcome]
        return [stamp * 1e-9 for _c, stamp, _raw in reader.messages(connections=conns)]
