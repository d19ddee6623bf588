"""Callbacks in the style of Stable-Baselines3: override ``_on_step() -> bool`` (False stops training)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ast_robot.core.trainer import Trainer


class Callback:
    """Base class. ``self.trainer`` is set before training starts."""

    def __init__(self) -> None:
        self.trainer: Trainer | None = None

    def init_callback(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_training_start(self) -> None:
        self._on_training_start()

    def on_step(self) -> bool:
        """Called after every optimizer step; returning False stops training."""
        return bool(self._on_step())

    def on_training_end(self) -> None:
        self._on_training_end()

    def _on_training_start(self) -> None:
        pass

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        pass


class EvalCallback(Callback):
    """Evaluate every ``every`` steps (and at the end); records (step, train seconds, metrics) rows.

    ``evaluate(model) -> dict`` must not train. Evaluation time is not counted as training time. With
    ``stop_when(metrics) -> bool`` training stops as soon as it returns True.
    """

    def __init__(self, evaluate: Callable[[Any], dict[str, float]], every: int,
                 stop_when: Callable[[dict[str, float]], bool] | None = None) -> None:  # fmt: skip
        super().__init__()
        if every <= 0:
            raise ValueError(f"EvalCallback.every must be > 0, got {every}")
        self.evaluate, self.every, self.stop_when = evaluate, every, stop_when
        self.history: list[dict[str, float]] = []
        self.eval_seconds = 0.0

    def _run(self) -> dict[str, float]:
        trainer = self.trainer
        assert trainer is not None
        start = time.perf_counter()
        metrics = dict(self.evaluate(trainer.model))
        self.eval_seconds += time.perf_counter() - start
        row = {"step": trainer.step, "train_seconds": trainer.counters.train_seconds,
               "forward_samples": trainer.counters.forward_samples,
               "backward_samples": trainer.counters.backward_samples, **metrics}  # fmt: skip
        self.history.append(row)
        if trainer.run is not None:
            trainer.run.scalars(metrics, trainer.step, prefix="eval/")
        return metrics

    def _on_step(self) -> bool:
        if self.trainer.step % self.every:
            return True
        metrics = self._run()
        return not (self.stop_when and self.stop_when(metrics))

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["step"] != self.trainer.step:
            self._run()


class CallbackList(Callback):
    """Several callbacks as one; stops when any of them asks to."""

    def __init__(self, callbacks: list[Callback]) -> None:
        super().__init__()
        self.callbacks = list(callbacks)

    def init_callback(self, trainer: Trainer) -> None:
        super().init_callback(trainer)
        for cb in self.callbacks:
            cb.init_callback(trainer)

    def _on_training_start(self) -> None:
        for cb in self.callbacks:
            cb.on_training_start()

    def _on_step(self) -> bool:
        return all([cb.on_step() for cb in self.callbacks])  # every callback runs, even after a False

    def _on_training_end(self) -> None:
        for cb in self.callbacks:
            cb.on_training_end()


class GateAnneal(Callback):
    """Train ungated for the last ``fraction`` of the steps (InfoBatch's annealing): the final steps see
    every drawn sample, which removes the residual bias of selection near convergence. Counted honestly:
    the annealed steps forward and backward everything they draw."""

    def __init__(self, fraction: float) -> None:
        super().__init__()
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"gate.anneal: {fraction!r}; expected a fraction in [0, 1)")
        self.fraction = fraction

    def _on_training_start(self) -> None:
        self._on_step()  # a run resumed inside the annealing phase starts ungated

    def _on_step(self) -> bool:
        trainer = self.trainer
        if trainer.gated and trainer.step >= (1.0 - self.fraction) * trainer.cfg.steps:
            trainer.gated = False
        return True
