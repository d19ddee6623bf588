"""Domain-randomization configuration: one distribution per randomized parameter."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ast_robot.config.errors import ConfigError
from ast_robot.config.schema import doc
from ast_robot.config.shipped import shipped_dir


@dataclass
class DistributionConfig:
    """How one parameter is sampled at every reset."""

    dist: Literal["uniform", "loguniform", "normal", "constant"] = doc("uniform", "Distribution family.")
    low: float = doc(1.0, "Lower bound (uniform/loguniform), in the parameter's unit or as a scale factor.")
    high: float = doc(1.0, "Upper bound (uniform/loguniform).")
    mean: float = doc(1.0, "Mean (normal) or the value (constant).")
    std: float = doc(0.0, "Standard deviation (normal).", ge=0)
    mode: Literal["scale", "absolute"] | None = doc(
        None,
        "`scale`: a factor on the model's nominal value; `absolute`: a value with a unit (kg, m, control "
        "steps). Each parameter has one mode (table in ast_robot.envs.randomization); null means that mode, "
        "a different one is an error.",
    )

    def __post_init__(self) -> None:
        bad = {k: v for k, v in (("low", self.low), ("high", self.high), ("mean", self.mean), ("std", self.std))
               if not math.isfinite(v)}  # fmt: skip
        if bad:  # NaN passes every comparison below, and an infinite bound cannot be sampled
            raise ValueError(f"{', '.join(bad)} must be finite numbers, got {bad}")
        if self.dist in ("uniform", "loguniform") and self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.dist == "loguniform" and self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low}")


@dataclass
class VisualRandomizationConfig:
    """Per-episode visual randomization (ast_robot.envs.visual_randomization); values go to `info["dr"]` as
    `visual_*`. Applies to the pick-and-place envs' scene camera (colour cast and image noise: to the wrist
    camera too)."""

    enabled: bool = doc(False, "Sample lights, colours, camera pose jitter and image noise at every reset.")
    light_tilt_deg: float = doc(35.0, "Largest tilt (deg) of the directional light from straight down.", ge=0, le=80)
    light_intensity: tuple[float, float] = doc((0.6, 1.25), "Range of the light's diffuse scale factor (with the "
                                            "physical light_diffuse <= 1.3 it stays below 1: no clipping).")  # fmt: skip
    table_value: tuple[float, float] = doc((0.25, 0.55), "Range of the table colour's HSV value (brightness).")
    floor_value: tuple[float, float] = doc((0.1, 0.5), "Range of the background (floor) colour's HSV value.")
    scenery_saturation: float = doc(0.25, "Largest HSV saturation of table and floor colours (greyish: not "
                                    "confusable with a named cube colour).", ge=0, le=0.45)  # fmt: skip
    hue_jitter_deg: float = doc(10.0, "Hue jitter (deg) of cube and pad colours, clipped to the colour name's "
                                "band.", ge=0, le=60)  # fmt: skip
    saturation_scale: tuple[float, float] = doc((0.8, 1.2), "Range of the factor on a named colour's saturation.")
    value_scale: tuple[float, float] = doc((0.8, 1.15), "Range of the factor on a named colour's HSV value.")
    camera_shift: float = doc(0.03, "Camera position jitter (m): uniform in +-this per axis.", ge=0, le=0.1)
    camera_rotation_deg: float = doc(3.0, "Camera orientation jitter (deg): uniform in +-this for roll, pitch "
                                     "and yaw.", ge=0, le=15)  # fmt: skip
    wrist_shift: float = doc(0.004, "Wrist camera mount jitter (m): uniform in +-this per axis of the gripper "
                             "frame (only with env.wrist_camera).", ge=0, le=0.03)  # fmt: skip
    wrist_rotation_deg: float = doc(2.0, "Wrist camera mount orientation jitter (deg): uniform in +-this for "
                                    "roll, pitch and yaw (only with env.wrist_camera).", ge=0, le=10)  # fmt: skip
    image_noise: tuple[float, float] = doc((0.0, 6.0), "Range of the per-episode std (uint8 levels) of Gaussian "
                                           "pixel noise.")  # fmt: skip
    colour_shift: float = doc(0.0, "Camera colour cast (fraction of full scale): uniform in +-this per RGB "
                              "channel, added to every pixel of a camera's image (each camera draws its own); 0 "
                              "(the default) draws nothing. BC training casts every stored demo and scene image "
                              "recorded without a cast the same way, per sample and batch (trainers/colour_aug.py).",
                              ge=0, le=0.5)  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("light_intensity", "table_value", "floor_value", "saturation_scale", "value_scale",
                     "image_noise"):  # fmt: skip
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
                raise ValueError(f"randomization.visual.{name}: ({low}, {high}) must be finite with 0 <= low <= high")


@dataclass
class RandomizationConfig:
    """Per-episode domain randomization. Every sampled value is reported in `info["dr"]`."""

    enabled: bool = doc(True, "Sample new parameters at every reset; false (here or in the preset) keeps the "
                        "nominal model.")  # fmt: skip
    preset: str = doc(
        "", "Base parameter set: a name in configs/randomization/ (e.g. `default`) or a YAML path; an entry of "
        "`params` here overrides the fields it names of the preset's entry (the others keep the preset's "
        "values). Empty: only `params`."
    )
    params: dict[str, DistributionConfig] = doc(
        factory=dict, help="Parameter name -> distribution. Names are checked by ast_robot.envs.randomization."
    )
    visual: VisualRandomizationConfig = doc(
        factory=VisualRandomizationConfig, help="Visual randomization (off by default); a config whose `visual` "
        "is all defaults takes its preset's."
    )


def preset_path(preset: str) -> Path:
    """The YAML file of ``preset``: a path ending in .yaml/.yml, else a name in the shipped presets.

    Presets live in configs/randomization/ (shipped in the wheel; see ``ast_robot.config.shipped``).
    """
    path = Path(preset)
    if path.suffix in (".yaml", ".yml"):
        return path
    return shipped_dir("randomization") / f"{preset}.yaml"


def read_preset(preset: str) -> dict[str, Any]:
    """The preset's YAML tree (its `parent:` chain merged, its own ``preset`` resolved); ValueError if missing."""
    from ast_robot.config.loader import read_yaml_tree

    path = preset_path(preset)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ConfigError("randomization.preset", preset, f"a preset name {known} or a path to a YAML file "
                          f"(looked for {path})", "unknown preset")  # fmt: skip
    data = read_yaml_tree(path)
    if data.get("preset"):
        data = merge_preset_entries(data)
    return data


def merge_preset_entries(data: dict[str, Any]) -> dict[str, Any]:
    """Raw ``randomization`` mapping with each partial ``params`` entry completed from its preset entry.

    ``{preset: default, params: {latency: {high: 3}}}`` keeps the preset's ``low`` (and ``dist``) instead
    of the dataclass defaults; call before ``from_dict``. The preset itself stays named (``resolve`` merges
    the entries it does not override). A mapping without a preset comes back unchanged.
    """
    preset, params = data.get("preset"), data.get("params")
    if not preset or not isinstance(preset, str) or not isinstance(params, dict):
        return data
    from ast_robot.config.loader import deep_merge

    base = read_preset(preset).get("params") or {}
    merged = {name: deep_merge(base[name], entry) if isinstance(entry, dict) and isinstance(base.get(name), dict)
              else entry for name, entry in params.items()}  # fmt: skip
    return {**data, "params": merged}
