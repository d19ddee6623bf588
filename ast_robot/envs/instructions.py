"""Colour palette and instruction templates; the words vary per episode, the goal they name is real."""

from __future__ import annotations

import numpy as np

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.15, 0.15), "green": (0.15, 0.7, 0.2), "blue": (0.15, 0.3, 0.85),
    "yellow": (0.9, 0.85, 0.15), "purple": (0.55, 0.2, 0.7), "orange": (0.95, 0.5, 0.1),
    "white": (0.95, 0.95, 0.95), "cyan": (0.1, 0.8, 0.85),
}  # fmt: skip

REACH_TEMPLATES = (
    "move the gripper to the {colour} ball",
    "reach the {colour} target",
    "touch the {colour} sphere with the gripper",
    "go to the {colour} marker",
)

PICK_PLACE_TEMPLATES = (
    "put the {object} block on the {pad} pad",
    "move the {object} cube to the {pad} mat",
    "pick up the {object} block and place it on the {pad} pad",
    "place the {object} cube onto the {pad} square",
)


def choose_colours(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct colour names."""
    names = list(COLOURS)
    if n > len(names):
        raise ValueError(f"asked for {n} distinct colours; the palette has {len(names)}")
    return [names[i] for i in rng.choice(len(names), size=n, replace=False)]


def fill(templates: tuple[str, ...], rng: np.random.Generator, **slots: str) -> str:
    """One template, chosen by ``rng``, filled with ``slots``."""
    return templates[int(rng.integers(len(templates)))].format(**slots)
