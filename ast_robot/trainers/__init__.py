"""Trainers: thin adapters that build data, a model and a per-sample loss, and run the core Trainer.

``TRAINERS`` maps ``train.type`` to an entry point ``fn(cfg: ExperimentConfig, resume: str | None) ->
dict`` (final metrics). A trainer module registers itself with ``@TRAINERS.register("name")`` and is
listed in ``TRAINER_MODULES`` so it is imported on first lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ast_robot.registry import Registry

TRAINER_MODULES: list[str] = [
    "ast_robot.trainers.vision",
    "ast_robot.trainers.language",
    "ast_robot.trainers.bc",
    "ast_robot.trainers.sac",
]

TrainFn = Callable[[Any, "str | None"], dict[str, float]]
TRAINERS: Registry[TrainFn] = Registry("trainer", modules=TRAINER_MODULES)
