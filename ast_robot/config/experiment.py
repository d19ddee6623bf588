"""The top-level experiment config: one section per concern."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ast_robot.config.deploy import DeployConfig
from ast_robot.config.env import EnvConfig
from ast_robot.config.errors import ConfigError
from ast_robot.config.gap import GapConfig
from ast_robot.config.gate import GateConfig, SignificanceConfig
from ast_robot.config.names import RANDOMIZATION_PARAMS, REWARD_TERMS, component_names
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


def check_mapping_names(cfg: ExperimentConfig) -> None:
    """Keys of the name -> value fields must be names the code knows: a typo set with ``--set a.b.typo=1``
    would otherwise pass the schema (any string is a dict key) and be dropped or fail much later.
    The tables live in :mod:`ast_robot.config.names`: checking imports no simulator or torch."""
    _require_known("significance.weights", cfg.significance.weights, component_names())
    _require_known("env.reward_scales", cfg.env.reward_scales, REWARD_TERMS)
    _require_known("randomization.params", cfg.randomization.params, RANDOMIZATION_PARAMS)


def _require_known(path: str, mapping: Mapping[str, object], known: Iterable[str]) -> None:
    """Every key of ``mapping`` is in ``known``."""
    names = sorted(known)
    bad = [k for k in mapping if k not in names]
    if bad:
        raise ConfigError(f"{path}.{bad[0]}", bad[0], f"one of {names}", "unknown name")
