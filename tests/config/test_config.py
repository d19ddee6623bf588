"""Config validation, inheritance, overrides and registry errors."""

from __future__ import annotations

import pytest

from ast_robot.config import (
    BCTrainConfig,
    ConfigError,
    ExperimentConfig,
    SACTrainConfig,
    from_dict,
    load_config,
    save_config,
    to_dict,
)


def write(path, text):
    path.write_text(text)
    return path


def test_demo_config_loads(repo_root):
    cfg = load_config(repo_root / "configs/experiments/demo.yaml")
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == "demo"
    assert isinstance(cfg.train, BCTrainConfig)
    assert cfg.policy.d_model == 64  # inherited from base.yaml


def test_parent_inheritance_merges_nested_keys(tmp_path):
    write(tmp_path / "base.yaml", "seed: 3\ntrain: {type: bc, lr: 0.1, steps: 7}\n")
    (tmp_path / "sub").mkdir()
    child = write(tmp_path / "sub/child.yaml", "parent: ../base.yaml\ntrain: {lr: 0.2}\n")
    cfg = load_config(child)
    assert cfg.seed == 3 and cfg.train.lr == 0.2 and cfg.train.steps == 7


def test_dotted_overrides_parse_yaml_values(tmp_path):
    path = write(tmp_path / "a.yaml", "name: a\n")
    cfg = load_config(path, ["train.lr=1e-3", "env.camera=true", "env.camera_size=[32, 48]", "name=b"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.env.camera is True and cfg.env.camera_size == (32, 48) and cfg.name == "b"


@pytest.mark.parametrize(
    ("override", "path", "words"),
    [
        ("train.lr=abc", "train.lr", ["'abc'", "float"]),
        ("train.lrr=1", "train.lrr", ["unknown key", "did you mean 'lr'"]),
        ("gate.target_rate=0", "gate.target_rate", ["out of range", "> 0"]),
        ("gate.target_rate=1.5", "gate.target_rate", ["<= 1"]),
        ("train.steps=1.5", "train.steps", ["integer"]),
        ("env.camera=3", "env.camera", ["boolean"]),
        ("env.action_mode=teleport", "env.action_mode", ["ee_delta", "joint_delta"]),
        ("train.type=qlearning", "train.type", ["unknown type", "bc", "language", "sac", "vision"]),
        ("policy.n_heads=3", "policy", ["divisible"]),
        ("gate.kp=-1", "gate.kp", [">= 0"]),
    ],
)
def test_bad_values_name_field_value_and_allowed(tmp_path, override, path, words):
    cfg_path = write(tmp_path / "a.yaml", "name: a\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg_path, [override])
    message = str(info.value)
    assert message.startswith(path + ":"), message
    for word in words:
        assert word in message, message


def test_bad_override_syntax(tmp_path):
    cfg_path = write(tmp_path / "a.yaml", "name: a\n")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(cfg_path, ["train.lr"])


def test_missing_parent_is_an_error(tmp_path):
    path = write(tmp_path / "a.yaml", "parent: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load_config(path)


def test_cyclic_parents_are_an_error(tmp_path):
    write(tmp_path / "a.yaml", "parent: b.yaml\n")
    write(tmp_path / "b.yaml", "parent: a.yaml\n")
    with pytest.raises(ConfigError, match="cyclic"):
        load_config(tmp_path / "a.yaml")


def test_yaml_tags_are_not_executed(tmp_path):
    path = write(tmp_path / "a.yaml", "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(path)


def test_type_key_selects_variant_and_changed_type_replaces_section(tmp_path):
    write(tmp_path / "base.yaml", "train: {type: bc, n_demos: 5}\n")
    path = write(tmp_path / "a.yaml", "parent: base.yaml\ntrain: {type: sac, her: false}\n")
    cfg = load_config(path)
    assert isinstance(cfg.train, SACTrainConfig) and cfg.train.her is False


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(write(tmp_path / "a.yaml", "name: x\ntrain: {type: vision, epochs: 3}\n"))
    save_config(cfg, tmp_path / "out.yaml")
    again = load_config(tmp_path / "out.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_randomization_distribution_checks():
    data = {"randomization": {"params": {"friction": {"dist": "uniform", "low": 2.0, "high": 1.0}}}}
    with pytest.raises(ConfigError, match="randomization.params.friction"):
        from_dict(ExperimentConfig, data)


def test_every_field_is_documented():
    import dataclasses

    from ast_robot.config import experiment

    def walk(cls):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no documentation"
            if dataclasses.is_dataclass(f.type) if not isinstance(f.type, str) else False:
                walk(f.type)

    for cls in (experiment.ExperimentConfig, *[type(getattr(ExperimentConfig(), n)) for n in
                ("env", "randomization", "policy", "significance", "gate", "train", "deploy", "gap")]):
        walk(cls)
    for variant in experiment.TrainConfig._variants.values():
        walk(variant)
