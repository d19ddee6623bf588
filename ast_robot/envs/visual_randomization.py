"""Visual domain randomization as pure functions: ``sample(cfg, rng, ...)`` draws, ``apply(model, ...)`` writes.

The physical randomization (``ast_robot.envs.randomization``) runs first at every reset and restores the
nominal model; this module then composes on top of it, so nothing compounds across episodes. Every value
below goes into ``info["dr"]`` (floats, names prefixed ``visual_``), so an episode's look can be replayed.

| name                         | unit      | what it changes                                                  |
|------------------------------|-----------|------------------------------------------------------------------|
| visual_light_tilt            | deg       | tilt of the directional light `top` from straight down           |
| visual_light_azimuth         | deg       | azimuth of that tilt (0 = +x)                                    |
| visual_light_intensity       | scale     | its diffuse intensity (times the physical `light_diffuse`)       |
| visual_table_r/g/b           | [0, 1]    | table colour (times the physical `table_brightness`)             |
| visual_floor_r/g/b           | [0, 1]    | background (floor) colour (same)                                 |
| visual_object{i}_r/g/b       | [0, 1]    | cube i's colour, jittered inside its colour name's band          |
| visual_pad{j}_r/g/b          | [0, 1]    | pad j's colour, jittered inside its colour name's band           |
| visual_camera_dx/dy/dz       | m         | scene camera shift (added to the physical `camera_x/y/z`)        |
| visual_camera_roll/pitch/yaw | deg       | scene camera rotation about its own axes, after aiming at the    |
|                              |           | workspace centre (the camera becomes a fixed camera)             |
| visual_image_noise           | uint8 lvl | std of Gaussian pixel noise on every camera observation          |
| visual_colour_shift_r/g/b    | fraction  | colour cast of the scene camera: added to each channel (x 255)   |
| visual_wrist_colour_shift_r/g/b | fraction | the wrist camera's own cast (drawn apart: another sensor)      |

The colour cast is drawn only when ``colour_shift`` > 0 and after every other draw of the reset, so a config
without it draws exactly what it drew before the key existed (tests/envs/test_colour_cast.py).

Colour names mean bands in HSV (:data:`BANDS`): a jittered colour stays inside its name's band, so the
instruction "the red block" still names the red cube under any sample (tests check it on many draws).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import mujoco
import numpy as np

from ast_robot.config.randomization import VisualRandomizationConfig
from ast_robot.envs.instructions import COLOURS

CAMERA, LIGHT, AIM_BODY = "scene", "top", "workspace_center"  # MJCF names in envs/scenes/table.xml


@dataclass(frozen=True)
class Band:
    """What a colour name allows in HSV: hue (deg; ``hue_low`` may be negative to wrap past 0), saturation, value."""

    hue_low: float
    hue_high: float
    sat_low: float
    sat_high: float = 1.0
    val_low: float = 0.45
    val_high: float = 1.0

    def contains(self, rgb: np.ndarray) -> bool:
        h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in rgb))
        hue = h * 360.0
        if self.hue_low < 0 and hue > 180.0:
            hue -= 360.0  # red wraps around 0
        in_hue = self.hue_high - self.hue_low >= 360.0 or self.hue_low <= hue <= self.hue_high
        return in_hue and self.sat_low <= s <= self.sat_high and self.val_low <= v <= self.val_high


# Disjoint hue bands around the palette's nominal hues (red 0, orange 28, yellow 56, green 126, cyan 184,
# blue 227, purple 282 deg); chromatic colours keep saturation >= 0.5, white has none to speak of.
BANDS: dict[str, Band] = {
    "red": Band(-15.0, 12.0, 0.5), "orange": Band(18.0, 40.0, 0.5), "yellow": Band(48.0, 68.0, 0.5),
    "green": Band(95.0, 150.0, 0.5), "cyan": Band(172.0, 198.0, 0.5), "blue": Band(212.0, 245.0, 0.5),
    "purple": Band(265.0, 300.0, 0.5), "white": Band(0.0, 360.0, 0.0, 0.12, 0.8),
}  # fmt: skip
assert set(BANDS) == set(COLOURS), "every colour name needs a band"


def band_of(rgb: np.ndarray) -> str | None:
    """The colour name whose band holds ``rgb`` (3, [0, 1]), or None (bands are disjoint)."""
    names = [name for name, band in BANDS.items() if band.contains(rgb)]
    return names[0] if len(names) == 1 else None


def jitter_colour(name: str, cfg: VisualRandomizationConfig, rng: np.random.Generator) -> np.ndarray:
    """``COLOURS[name]`` with hue, saturation and value jittered, then clipped into ``BANDS[name]``."""
    band = BANDS[name]
    h, s, v = colorsys.rgb_to_hsv(*COLOURS[name])
    hue_draw, sat_draw, val_draw = rng.uniform(-1.0, 1.0), rng.uniform(*cfg.saturation_scale), rng.uniform(*cfg.value_scale)
    if band.hue_high - band.hue_low >= 360.0:  # white: the hue is irrelevant at this saturation
        hue = h * 360.0 + hue_draw * cfg.hue_jitter_deg
    else:
        centre = h * 360.0 - (360.0 if band.hue_low < 0 and h > 0.5 else 0.0)
        hue = _clip(centre + hue_draw * cfg.hue_jitter_deg, band.hue_low, band.hue_high)
    sat = _clip(s * sat_draw, band.sat_low, band.sat_high)
    val = _clip(v * val_draw, band.val_low, band.val_high)
    return np.array(colorsys.hsv_to_rgb((hue % 360.0) / 360.0, sat, val))


def _clip(x: float, low: float, high: float, margin: float = 1e-6) -> float:
    """``x`` inside [low, high] by a hair: the HSV -> RGB -> HSV round trip moves edges by ~1e-14."""
    return min(max(x, low + margin), high - margin)


def _scenery_colour(cfg: VisualRandomizationConfig, values: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A greyish colour: any hue, saturation below ``cfg.scenery_saturation`` (below every chromatic band)."""
    h, s, v = rng.uniform(0.0, 1.0), rng.uniform(0.0, cfg.scenery_saturation), rng.uniform(*values)
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def sample(cfg: VisualRandomizationConfig, rng: np.random.Generator, objects: list[str],
           pads: list[str]) -> dict[str, float]:  # fmt: skip
    """One episode's visual values (name -> float); ``objects`` / ``pads``: the colour names of the scene."""
    if not cfg.enabled:
        return {}
    out = {"visual_light_tilt": rng.uniform(0.0, cfg.light_tilt_deg), "visual_light_azimuth": rng.uniform(0.0, 360.0),
           "visual_light_intensity": rng.uniform(*cfg.light_intensity)}  # fmt: skip
    colours = {"table": _scenery_colour(cfg, cfg.table_value, rng), "floor": _scenery_colour(cfg, cfg.floor_value, rng)}
    colours.update({f"object{i}": jitter_colour(name, cfg, rng) for i, name in enumerate(objects)})
    colours.update({f"pad{j}": jitter_colour(name, cfg, rng) for j, name in enumerate(pads)})
    for element, rgb in colours.items():
        out.update({f"visual_{element}_{c}": float(x) for c, x in zip("rgb", rgb)})
    shift, turn = cfg.camera_shift, cfg.camera_rotation_deg
    out.update({f"visual_camera_d{a}": rng.uniform(-shift, shift) for a in "xyz"})
    out.update({f"visual_camera_{a}": rng.uniform(-turn, turn) for a in ("roll", "pitch", "yaw")})
    out["visual_image_noise"] = rng.uniform(*cfg.image_noise)
    return {k: float(v) for k, v in out.items()}


@dataclass(frozen=True)
class VisualNominal:
    """Model indices and the nominal colours this module scales (taken once, before any randomization)."""

    camera: int
    light: int
    aim: np.ndarray  # (3,) m, world: where the nominal camera looks
    materials: dict[str, int]  # "table" / "floor" -> material id
    scenery_rgb: dict[str, np.ndarray]


def nominal(model: mujoco.MjModel) -> VisualNominal:
    """Indices and nominal colours of ``model`` (call right after loading)."""
    mats = {name: int(model.geom_matid[model.geom(name).id]) for name in ("table", "floor")}
    return VisualNominal(model.camera(CAMERA).id, model.light(LIGHT).id, model.body(AIM_BODY).pos.copy(), mats,
                         {k: model.mat_rgba[m, :3].copy() for k, m in mats.items()})  # fmt: skip


def apply(model: mujoco.MjModel, params: dict[str, float], nom: VisualNominal) -> None:
    """Write ``params`` (from :func:`sample`) over the physically randomized model; no-op when empty.

    Cube and pad colours are written to geoms ``object{i}`` and sites ``pad{j}``, which the task coloured
    with the nominal palette at this reset.
    """
    if not params:
        return
    tilt, azimuth = math.radians(params["visual_light_tilt"]), math.radians(params["visual_light_azimuth"])
    model.light_dir[nom.light] = [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth), -math.cos(tilt)]
    model.light_diffuse[nom.light] = np.minimum(model.light_diffuse[nom.light] * params["visual_light_intensity"], 1.0)
    for element, mat in nom.materials.items():
        ratio = _rgb(params, element) / np.maximum(nom.scenery_rgb[element], 1e-6)
        model.mat_rgba[mat, :3] = np.minimum(model.mat_rgba[mat, :3] * ratio, 1.0)
    i = 0
    while f"visual_object{i}_r" in params:
        model.geom_rgba[model.geom(f"object{i}").id, :3] = _rgb(params, f"object{i}")
        i += 1
    j = 0
    while f"visual_pad{j}_r" in params:
        model.site_rgba[model.site(f"pad{j}").id, :3] = _rgb(params, f"pad{j}")
        j += 1
    cam = nom.camera
    model.cam_pos[cam] += [params[f"visual_camera_d{a}"] for a in "xyz"]
    rpy = [params[f"visual_camera_{a}"] for a in ("roll", "pitch", "yaw")]
    model.cam_mode[cam] = mujoco.mjtCamLight.mjCAMLIGHT_FIXED
    model.cam_quat[cam] = camera_quat(model.cam_pos[cam], nom.aim, rpy)


def _rgb(params: dict[str, float], element: str) -> np.ndarray:
    return np.array([params[f"visual_{element}_{c}"] for c in "rgb"])


def look_at(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation (3, 3; columns = camera x, y, z in world) of a MuJoCo camera at ``pos`` looking at ``target``.

    MuJoCo cameras look along their -z axis with +y up; the x axis stays horizontal (as ``targetbody``
    cameras do).
    """
    back = np.asarray(pos, dtype=float) - np.asarray(target, dtype=float)
    z = back / np.linalg.norm(back)
    x = np.cross([0.0, 0.0, 1.0], z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def camera_quat(pos: np.ndarray, target: np.ndarray, rpy_deg: list[float]) -> np.ndarray:
    """Quaternion (w, x, y, z) of the camera aimed at ``target``, then turned by roll (about its view axis),
    pitch (about its x axis) and yaw (about its y axis), in degrees."""
    roll, pitch, yaw = (math.radians(a) for a in rpy_deg)
    turn = _axis_rotation(2, roll) @ _axis_rotation(0, pitch) @ _axis_rotation(1, yaw)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (look_at(pos, target) @ turn).flatten())
    return quat


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.eye(3)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


CAST = "visual_colour_shift"  # info["dr"] prefix of the scene camera's colour cast (_r, _g, _b)
WRIST_CAST = "visual_wrist_colour_shift"  # ... of the wrist camera's


def sample_colour_shift(cfg: VisualRandomizationConfig, rng: np.random.Generator, prefix: str = CAST) -> dict[str, float]:
    """One camera's colour cast for an episode (``prefix``_r/g/b, fractions of full scale, uniform in
    +-``cfg.colour_shift``); {} and no draw when visual randomization is off or the range is zero."""
    if not cfg.enabled or cfg.colour_shift <= 0:
        return {}
    return {f"{prefix}_{c}": float(rng.uniform(-cfg.colour_shift, cfg.colour_shift)) for c in "rgb"}


def shift_of(params: dict[str, float], prefix: str = CAST) -> np.ndarray:
    """(3,) the colour cast ``params`` holds under ``prefix`` (zeros when it holds none)."""
    return np.array([params.get(f"{prefix}_{c}", 0.0) for c in "rgb"])


def colour_cast(image: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3 uint8) plus ``shift`` (3, fractions of full scale) x 255 per channel, clipped to
    [0, 255] and truncated to uint8: what the twin's camera does to its frames (its ``post_process`` calls
    this), so a sim cast of ``s`` is the twin's cast of ``s`` bit for bit. The image itself when ``shift`` is 0."""
    shift = np.asarray(shift, dtype=np.float64)
    if not shift.any():
        return image
    return np.clip(image.astype(np.float64) + shift * 255.0, 0, 255).astype(np.uint8)


def add_image_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H, W, 3 uint8) plus N(0, std) per channel, rounded and clipped to [0, 255]; a copy."""
    if std <= 0:
        return image
    noisy = image + rng.normal(0.0, std, size=image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
