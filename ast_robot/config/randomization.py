"""Domain-randomization configuration: one distribution per randomized parameter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import doc


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
        if self.dist in ("uniform", "loguniform") and self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.dist == "loguniform" and self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low}")


@dataclass
class RandomizationConfig:
    """Per-episode domain randomization. Every sampled value is reported in `info["dr"]`."""

    enabled: bool = doc(True, "Sample new parameters at every reset; false keeps the nominal model.")
    preset: str = doc(
        "", "Base parameter set: a name in configs/randomization/ (e.g. `default`) or a YAML path; `params` "
        "here override single entries. Empty: only `params`."
    )
    params: dict[str, DistributionConfig] = doc(
        factory=dict, help="Parameter name -> distribution. Names are checked by ast_robot.envs.randomization."
    )
