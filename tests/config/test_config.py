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


@pytest.mark.parametrize("parent_train", ["{steps: 777, lr: 0.01}", "{type: bc, steps: 777, lr: 0.01}"])
def test_child_restating_the_default_type_keeps_the_parents_keys(tmp_path, parent_train):
    write(tmp_path / "base.yaml", f"train: {parent_train}\n")
    child = write(tmp_path / "child.yaml", "parent: base.yaml\ntrain: {type: bc, batch_size: 8}\n")
    cfg = load_config(child)
    assert (cfg.train.steps, cfg.train.lr, cfg.train.batch_size) == (777, 0.01, 8)


def test_child_switching_type_drops_the_parents_keys(tmp_path):
    write(tmp_path / "base.yaml", "train: {steps: 777}\n")
    child = write(tmp_path / "child.yaml", "parent: base.yaml\ntrain: {type: sac}\n")
    cfg = load_config(child)
    assert isinstance(cfg.train, SACTrainConfig) and cfg.train.steps == SACTrainConfig().steps


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
    import typing

    from ast_robot.config import experiment

    seen: set[type] = set()

    def nested(tp):  # dataclasses inside a resolved hint: X, X | None, list[X], dict[str, X]
        args = typing.get_args(tp)
        return [tp] if dataclasses.is_dataclass(tp) else [c for a in args for c in nested(a)]

    def walk(cls):
        seen.add(cls)
        hints = typing.get_type_hints(cls)  # resolved: with `from __future__ import annotations` f.type is a str
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no documentation"
            for sub in nested(hints[f.name]):
                if sub not in seen:
                    walk(sub)

    walk(experiment.ExperimentConfig)
    for variant in experiment.TrainConfig._variants.values():
        walk(variant)
    names = {c.__name__ for c in seen}
    assert {"EnvConfig", "GapConfig", "DistributionConfig", "BCTrainConfig", "SACTrainConfig"} <= names, names


@pytest.mark.parametrize(
    ("override", "path", "allowed"),
    [
        ("significance.weights.phsyical=1", "significance.weights.phsyical", "'physical'"),
        ("randomization.params.bogus={dist: constant, mean: 1}", "randomization.params.bogus", "'friction'"),
        ("env.reward_scales.x=3", "env.reward_scales.x", "'distance'"),
    ],
)
def test_unknown_names_in_mapping_fields_are_errors(repo_root, override, path, allowed):
    with pytest.raises(ConfigError) as info:
        load_config(repo_root / "configs/experiments/demo.yaml", [override])
    assert str(info.value).startswith(f"{path}: unknown name") and allowed in str(info.value)


def test_builtin_component_names_match_the_registry():
    from ast_robot.config.names import BUILTIN_COMPONENTS
    from ast_robot.core.significance import COMPONENTS

    assert set(BUILTIN_COMPONENTS) == set(COMPONENTS.names())


def test_a_type_switch_by_override_says_why_the_old_keys_fail(repo_root):
    with pytest.raises(ConfigError, match=r"train.n_demos: unknown key.*'n_demos' is a key of type 'bc', not of "
                       r"'sac' \(a --set of `train.type`"):  # fmt: skip
        load_config(repo_root / "configs/experiments/demo.yaml", ["train.type=sac"])
