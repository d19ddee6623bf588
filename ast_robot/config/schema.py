"""Turning plain dicts (from YAML) into typed, validated config dataclasses and back.

Every config class is a dataclass whose fields carry metadata made by :func:`doc`:

    lr: float = doc(3e-4, "Learning rate of the optimizer (1/step).", gt=0)

Validation is strict: unknown keys, wrong types, out-of-range values and unknown ``type:`` names are
errors that name the dotted field path, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from ast_robot.config.errors import ConfigError


def doc(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None, **bounds: Any) -> Any:
    """A dataclass field with a docstring and optional bounds (ge, gt, le, lt, choices); ``expect``: what a bad
    value's error says is allowed, in place of the type's or the bound's own words."""
    allowed = {"ge", "gt", "le", "lt", "choices", "expect"}
    if unknown := set(bounds) - allowed:
        raise TypeError(f"doc(): unknown bound(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    meta = {"help": help, **bounds}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Variant:
    """Base of config classes chosen by a ``type:`` key (see :func:`register_variant`).

    A subclass ``FooConfig(Variant)`` becomes a family; ``@register_variant("bar")`` on a further
    subclass makes ``{"type": "bar", ...}`` build that subclass.
    """

    _variants: typing.ClassVar[dict[str, type]] = {}
    type_name: typing.ClassVar[str] = ""
    default_variant: typing.ClassVar[str] = ""  # used when the mapping has no `type:` key

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if Variant in cls.__bases__:  # a new family root
            cls._variants = {}


def register_variant(name: str):
    """Class decorator: register a config class under ``type: name`` in its family."""

    def wrap(cls: type) -> type:
        family = cls._variants
        if name in family and family[name] is not cls:
            raise ValueError(f"variant {name!r} already registered as {family[name].__name__}")
        family[name] = cls
        cls.type_name = name
        return cls

    return wrap


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build ``cls`` (a dataclass) from a mapping, validating every field."""
    if isinstance(cls, type) and issubclass(cls, Variant):
        cls = _resolve_variant(cls, data, path)
    if not isinstance(data, dict):
        raise ConfigError(path or "<root>", data, f"a mapping for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields and k != "type"]
    if unknown:
        key = unknown[0]
        moved = getattr(cls, "moved_keys", {}).get(key)
        if moved:  # an old config file: say where the key lives now instead of listing the known ones
            raise ConfigError(_join(path, key), data[key], f"`{moved}` (the setting moved there)", "moved key")
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else _other_variants_hint(cls, key, path)
        # the hint first: a long key list is cut to one line after ~300 characters
        raise ConfigError(_join(path, key), key, f"a known key of {cls.__name__}{hint} (known: {sorted(fields)})", "unknown key")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _field_value(f, hints[name], data[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(path, name), None, f"a value (field {name!r} is required)", "missing key")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:  # cross-field checks in __post_init__
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(path or "<root>", data, str(err)) from err


def _field_value(f: dataclasses.Field, hint: Any, raw: Any, path: str) -> Any:
    """``raw`` converted to the field's type and inside its bounds; ConfigError (its ``expect`` words where set)."""
    try:
        value = _convert(hint, raw, path)
        _check_bounds(f, value, path)
    except ConfigError as err:
        if "expect" in f.metadata and err.path == path:
            raise ConfigError(path, raw, f.metadata["expect"], err.problem) from None
        raise
    return value


def to_dict(obj: Any) -> Any:
    """The inverse of :func:`from_dict`: plain dicts/lists/scalars, with ``type`` for variants."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        if isinstance(obj, Variant):
            out["type"] = obj.type_name
        for f in dataclasses.fields(obj):
            out[f.name] = to_dict(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def field_help(cls: type) -> dict[str, str]:
    """Field name -> documentation string (used by docs and `config show --help-fields`)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _resolve_variant(base: type, data: Any, path: str) -> type:
    family = base._variants
    if not isinstance(data, dict):
        raise ConfigError(path or "<root>", data, f"a mapping for {base.__name__}")
    name = data.get("type", base.type_name or getattr(base, "default_variant", ""))
    if not name:
        raise ConfigError(_join(path, "type"), None, f"one of {sorted(family)}", "missing key")
    if name not in family:
        raise ConfigError(_join(path, "type"), name, f"one of {sorted(family)}", "unknown type")
    return family[name]


def _other_variants_hint(cls: type, key: Any, path: str) -> str:
    """For a variant: which other `type:` values have ``key``, i.e. the key belongs to a type this mapping
    switched away from (a parent's keys are kept when an override changes `type:`)."""
    if not (isinstance(cls, type) and issubclass(cls, Variant)):
        return ""
    owners = sorted(n for n, v in cls._variants.items() if v is not cls and key in {f.name for f in dataclasses.fields(v)})
    if not owners:
        return ""
    return (f"; {key!r} is a key of type {', '.join(map(repr, owners))}, not of {cls.type_name!r} (a --set of "
            f"`{_join(path, 'type')}` keeps the keys the config files set for the old type: write a config whose "
            f"{path or 'root'} section is made for type {cls.type_name!r})")  # fmt: skip


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_label(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(path, value, f"one of {list(get_args(tp))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, value, f"a list ({_type_label(tp)})")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(path, value, f"a list of exactly {len(args)} items")
            return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        converted = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, value, "a mapping")
        key_t, val_t = get_args(tp) or (Any, Any)
        return {_convert(key_t, k, path): _convert(val_t, v, _join(path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    return _convert_scalar(tp, value, path)


def _convert_union(tp: Any, value: Any, path: str) -> Any:
    args = get_args(tp)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(path, value, f"a value of type {_type_label(tp)} (null is not allowed)")
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(arg, value, path)
        except ConfigError as err:
            errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    raise ConfigError(path, value, f"a value of type {_type_label(tp)}")


def _convert_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, value, "a boolean (true or false)")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, value, "an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, value, "a number (float)")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, value, "a string")
    if isinstance(value, tp):
        return value
    raise ConfigError(path, value, f"a value of type {_type_label(tp)}")


def _check_bounds(f: dataclasses.Field, value: Any, path: str) -> None:
    meta = f.metadata
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(path, value, f"one of {list(meta['choices'])}")
    checks = [("ge", lambda a, b: a >= b, ">="), ("gt", lambda a, b: a > b, ">"),
              ("le", lambda a, b: a <= b, "<="), ("lt", lambda a, b: a < b, "<")]  # fmt: skip
    for key, ok, sign in checks:
        if key in meta and isinstance(value, (int, float)) and not ok(value, meta[key]):
            raise ConfigError(path, value, f"a number {sign} {meta[key]}", "out of range")
