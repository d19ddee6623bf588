"""The package layout's import rules (DESIGN.md), checked by parsing every import, lazy ones included.

A lazy import inside a function is still a dependency: it breaks the same way when the package below is
moved or made light, so it counts here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ast_robot"

# What each package may import from ast_robot (top-level modules such as fileio count as units).
# run_layout (the run-directory names) lies at the bottom beside fileio: it imports only fileio.
MAY_IMPORT = {
    "config": {"fileio"},
    "run_layout": {"fileio"},
    "robot": {"config", "registry", "fileio", "run_layout"},
    "core": {"config", "fileio", "registry", "runlog", "run_layout"},
    "records": {"config", "fileio"},
}
MUST_NOT_IMPORT = {
    "envs": {"deploy", "twin", "gap", "trainers", "cli", "policies", "integrations", "sim2real"},
    "deploy": {"trainers"},  # a run's layout comes from run_layout, a SAC actor from integrations.sb3
}


def _unit(path: Path) -> str:
    """The package (or top-level module) a source file belongs to: ``ast_robot/deploy/x.py`` -> ``deploy``."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def _imported_modules(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["ast_robot", *path.relative_to(PACKAGE).parts[:-1]]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.append(node.module)
    return names


def package_edges() -> dict[str, dict[str, list[str]]]:
    """``{unit: {imported unit: [files]}}`` over ast_robot (imports of the unit itself left out)."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _unit(path)
        for name in _imported_modules(path):
            parts = name.split(".")
            if parts[0] == "ast_robot" and len(parts) > 1 and parts[1] != src:
                edges[src][parts[1]].append(str(path.relative_to(PACKAGE.parent)))
    return edges


def test_the_parser_sees_known_edges():
    """The checker itself: known imports are found (a parser that finds nothing would pass every rule)."""
    edges = package_edges()
    assert "robot" in edges["envs"]  # envs/base.py imports robot.kernels
    assert "config" in edges["core"]
    assert "robot" in edges["deploy"]


def test_packages_import_only_what_lies_below_them():
    edges = package_edges()
    problems = [f"{src} imports {dst} ({files[0]})" for src, allowed in MAY_IMPORT.items()
                for dst, files in edges[src].items() if dst not in allowed]  # fmt: skip
    problems += [f"{src} imports {dst} ({files[0]})" for src, banned in MUST_NOT_IMPORT.items()
                 for dst, files in edges[src].items() if dst in banned]  # fmt: skip
    assert not problems, "layout rules broken:\n" + "\n".join(problems)


def test_only_ros_adapters_import_rclpy():
    """Everything in ast_robot but the twin's node module stays importable without ROS (ros2_ws holds the
    deployment's adapters)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "twin/node.py":
            continue
        if any(name.split(".")[0] in {"rclpy", "rosidl_runtime_py"} for name in _imported_modules(path)):
            offenders.append(rel)
    assert not offenders, f"rclpy imported outside the ROS adapters: {offenders}"


def _cycle(edges: dict[str, dict[str, list[str]]]) -> list[str]:
    """One import cycle between units (as a path that returns to its start), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(unit: str, path: list[str]) -> list[str]:
        state[unit] = 1
        for nxt in sorted(edges.get(unit, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [unit, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[unit] = 2
        return []

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return []


def test_no_import_cycle_between_packages():
    edges = package_edges()
    cycle = _cycle(edges)
    detail = [f"{a} -> {b} ({edges[a][b][0]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    assert not cycle, "import cycle between packages:\n" + "\n".join(detail)


def test_the_cycle_check_finds_a_cycle():
    """The null case of the checker: a made-up two-package cycle is found, a chain is not."""
    assert _cycle({"a": {"b": ["x"]}, "b": {"a": ["y"]}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b": ["x"]}, "b": {"c": ["y"]}}) == []
