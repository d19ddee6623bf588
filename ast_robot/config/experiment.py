"""The top-level experiment config: one section per concern."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ast_robot.config.deploy import DeployConfig
from ast_robot.config.env import EnvConfig
from ast_robot.config.errors import ConfigError
from ast_robot.config.gap import GapConfig
from ast_robot.config.gate import GateConfig, SignificanceConfig
from ast_robot.config.policy import PolicyConfig
from ast_robot.config.randomization import RandomizationConfig
from ast_robot.config.schema import doc
from ast_robot.config.train import TrainConfig


@dataclass
class ExperimentConfig:
    """Everything one run needs; stored beside every run and checkpoint."""

    name: str = doc("experiment", "Run name; outputs go to `<run_root>/<name>/`.")
    seed: int = doc(0, "Master seed of every RNG in the run.", ge=0)
    run_root: str = doc("runs", "Folder that holds run directories.")
    env: EnvConfig = doc(factory=EnvConfig, help="Simulated task.")
    randomization: RandomizationConfig = doc(factory=RandomizationConfig, help="Domain randomization.")
    policy: PolicyConfig = doc(factory=PolicyConfig, help="Policy network.")
    significance: SignificanceConfig = doc(factory=SignificanceConfig, help="Per-sample significance model.")
    gate: GateConfig = doc(factory=GateConfig, help="PI-controlled sample gate.")
    train: TrainConfig = doc(factory=lambda: TrainConfig._variants["bc"](), help="Trainer (`type:` picks it).")
    deploy: DeployConfig = doc(factory=DeployConfig, help="Deployment and safety limits.")
    gap: GapConfig = doc(factory=GapConfig, help="Reality-gap analysis.")

    def __post_init__(self) -> None:
        check_mapping_names(self)


# The significance components ast_robot registers (ast_robot.core.components); a name outside this set
# is looked up in the registry itself, which imports torch, so plugins still work.
BUILTIN_COMPONENTS = ("learning_value", "loss", "novelty", "physical", "random", "uncertainty")


def check_mapping_names(cfg: ExperimentConfig) -> None:
    """Keys of the name -> value fields must be names the code knows: a typo set with ``--set a.b.typo=1``
    would otherwise pass the schema (any string is a dict key) and be dropped or fail much later.
    The lists are imported only when a mapping has a key to check."""
    _require_known("significance.weights", cfg.significance.weights, _component_names, BUILTIN_COMPONENTS)
    _require_known("env.reward_scales", cfg.env.reward_scales, _reward_terms)
    _require_known("randomization.params", cfg.randomization.params, _randomization_names)


def _component_names() -> Iterable[str]:
    from ast_robot.core.significance import COMPONENTS

    return COMPONENTS.names()


def _reward_terms() -> Iterable[str]:
    from ast_robot.envs.rewards import TERMS

    return TERMS


def _randomization_names() -> Iterable[str] | None:
    try:
        from ast_robot.envs.randomization import PARAMS
    except ImportError:  # the simulator (mujoco) is optional on analysis machines: names are checked at use
        return None
    return PARAMS


def _require_known(path: str, mapping: Mapping[str, object], known: Callable[[], Iterable[str] | None],
                   builtin: Iterable[str] = ()) -> None:  # fmt: skip
    """Every key of ``mapping`` is in ``builtin`` or ``known()`` (called only when needed)."""
    unknown = [k for k in mapping if k not in set(builtin)]
    if not unknown:
        return
    listed = known()
    if listed is None:  # the list is not available here
        return
    names = sorted(listed)
    bad = [k for k in unknown if k not in names]
    if bad:
        raise ConfigError(f"{path}.{bad[0]}", bad[0], f"one of {names}", "unknown name")
