"""YAML load/save with `parent:` inheritance and dotted `--set key=value` overrides."""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import yaml

from ast_robot.config.errors import ConfigError
from ast_robot.config.schema import Variant, from_dict, to_dict
from ast_robot.fileio import atomic_write_text


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` as a float (YAML 1.1 insists on ``1.0e-3``)."""


_SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(text: Any) -> Any:
    """Parse YAML with the safe loader (no object construction from tags)."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_tree(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML file and merge it over its `parent:` chain (parent paths are relative to the file)."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError("parent", str(path), "a parent chain without cycles", f"cyclic parent ({cycle}):")
    if not path.is_file():
        where = f" (parent of {_chain[-1]})" if _chain else ""
        raise ConfigError("parent" if _chain else "<file>", str(path), f"an existing YAML file{where}", "missing file")
    data = _parse_file(path)
    if not isinstance(data, dict):
        raise ConfigError.in_file(path, problem=f"the top level is a {type(data).__name__}",
                                  expected="a YAML mapping of config fields")  # fmt: skip
    parent = data.pop("parent", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError("parent", parent, "a relative or absolute path (string)")
    base = read_yaml_tree(path.parent / parent, (*_chain, path))
    return deep_merge(base, data)


def _parse_file(path: Path) -> Any:
    """The YAML content of ``path`` ({} when empty) with the safe loader: tags such as ``!!python/object``
    are refused, never constructed. A binary or unparsable file is one ConfigError line naming it."""
    from ast_robot.fileio import one_line

    expected = "a UTF-8 YAML mapping of config fields (plain YAML, no !!python tags)"
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError.in_file(path, problem=f"not UTF-8 text (binary data at byte {err.start})",
                                  expected=expected) from err  # fmt: skip
    try:
        data = safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        what = getattr(err, "problem", None) or str(err)
        raise ConfigError.in_file(path, problem=f"not valid YAML ({one_line(what, 160)}{where})",
                                  expected=expected) from err  # fmt: skip
    return {} if data is None else data


def deep_merge(base: dict[str, Any], over: dict[str, Any], _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``over`` wins; nested mappings merge key by key; a changed `type:` replaces the whole mapping.

    A base mapping without `type:` has its family's default variant (``train`` is ``bc``), so a child
    that restates the default keeps the parent's keys. Paths are those of :class:`ExperimentConfig`.
    """
    out = copy.deepcopy(base)
    for key, value in over.items():
        old, where = out.get(key), (*_path, str(key))
        if isinstance(old, dict) and isinstance(value, dict) and value.get("type") in (None, _type_of(old, where)):
            out[key] = deep_merge(old, value, where)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _type_of(mapping: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The `type:` of a config mapping at ``path``: its own key, else the default variant there."""
    if "type" in mapping:
        return mapping["type"]
    from ast_robot.config.experiment import ExperimentConfig

    cls: Any = ExperimentConfig
    for key in path:
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        if key not in hints:
            return None
        cls = hints[key]
    if isinstance(cls, type) and issubclass(cls, Variant):
        return cls.type_name or cls.default_variant or None
    return None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings; the value is parsed as YAML (`3e-4` -> float, `[1, 2]` -> list)."""
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", item, "KEY=VALUE with a dotted key, e.g. train.lr=3e-4")
        try:
            value = safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(parts[: i + 1]), child, "a mapping to set a sub-key in")
            node = child
        node[parts[-1]] = value
    return out


def load_config(path: str | Path, overrides: list[str] | None = None, cls: type | None = None) -> Any:
    """Load an experiment (or any ``cls``) config from YAML with inheritance and overrides."""
    if cls is None:
        from ast_robot.config.experiment import ExperimentConfig

        cls = ExperimentConfig
    data = apply_overrides(read_yaml_tree(path), overrides or [])
    try:
        if isinstance(data.get("randomization"), dict):  # partial params entries keep their preset's other fields
            from ast_robot.config.randomization import merge_preset_entries

            data["randomization"] = merge_preset_entries(data["randomization"])
        return from_dict(cls, data)
    except ConfigError as err:  # a field's error, said with the file it came from
        if str(path) in str(err):
            raise
        if overrides:  # the field may come from a --set: lead with the field, then the file
            err.args = (f"{err} (config {path} with its --set overrides)",)
            raise
        raise ConfigError.in_file(path, err) from err


def dump_config(cfg: Any) -> str:
    """The resolved config as YAML text (keys in field order)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg: Any, path: str | Path, header: str = "") -> Path:
    """Write the config atomically as YAML; ``header`` becomes leading comment lines."""
    text = "".join(f"# {line}\n" for line in header.splitlines()) + dump_config(cfg)
    return atomic_write_text(path, text)
