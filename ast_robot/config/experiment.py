"""The top-level experiment config: one section per concern."""

from __future__ import annotations

from dataclasses import dataclass

from ast_robot.config.deploy import DeployConfig
from ast_robot.config.env import EnvConfig
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
