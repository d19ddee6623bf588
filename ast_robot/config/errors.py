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

    @classmethod
    def in_file(cls, file: Any, err: ConfigError | None = None, problem: str = "", expected: str = "") -> ConfigError:
        """The error ``err`` (a field of the file's content) or ``problem``/``expected`` (the file as a
        whole) as one line that starts with the file's path."""
        from ast_robot.fileio import one_line

        out = cls(str(file), err.value if err else None, err.allowed if err else expected, problem or "bad file")
        text = f"{err}" if err is not None else f"{one_line(problem)}; expected {one_line(expected)}"
        out.args = (f"{file}: {one_line(text)}",)
        return out
