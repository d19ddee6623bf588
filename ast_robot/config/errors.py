"""The one error type of configuration problems."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value is wrong. The message names the dotted field path, the value and what is allowed."""

    def __init__(self, path: str, value: Any, allowed: str, problem: str = "invalid value") -> None:
        self.path, self.value, self.allowed, self.problem = path, value, allowed, problem
        shown = repr(value)
        if len(shown) > 240:
            shown = shown[:237] + "..."
        super().__init__(f"{path}: {problem} {shown}; expected {allowed}")
