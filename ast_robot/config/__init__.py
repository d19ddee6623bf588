"""Typed configuration: one dataclass per concern, YAML load/save, `parent:` and dotted overrides."""

from ast_robot.config.deploy import DeployConfig
from ast_robot.config.env import EnvConfig
from ast_robot.config.errors import ConfigError
from ast_robot.config.experiment import ExperimentConfig
from ast_robot.config.gap import GapConfig
from ast_robot.config.gate import GateConfig, SignificanceConfig
from ast_robot.config.loader import apply_overrides, dump_config, load_config, read_yaml_tree, save_config
from ast_robot.config.policy import PolicyConfig
from ast_robot.config.randomization import DistributionConfig, RandomizationConfig, VisualRandomizationConfig
from ast_robot.config.schema import Variant, doc, field_help, from_dict, register_variant, to_dict
from ast_robot.config.train import (
    BCTrainConfig,
    LanguageTrainConfig,
    SACTrainConfig,
    TrainConfig,
    VisionTrainConfig,
)

__all__ = [
    "BCTrainConfig", "ConfigError", "DeployConfig", "DistributionConfig", "EnvConfig", "ExperimentConfig",
    "GapConfig", "GateConfig", "LanguageTrainConfig", "PolicyConfig", "RandomizationConfig", "SACTrainConfig",
    "SignificanceConfig", "TrainConfig", "Variant", "VisionTrainConfig", "VisualRandomizationConfig", "apply_overrides", "doc", "dump_config",
    "field_help", "from_dict", "load_config", "read_yaml_tree", "register_variant", "save_config", "to_dict",
]  # fmt: skip
