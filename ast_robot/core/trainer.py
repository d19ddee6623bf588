"""The gated trainer: composition of model, per-sample loss, significance model, gate, optimizer, callbacks.

Per optimizer step, on one batch of ``n`` samples:

* ungated (no gate: the run is gated only with ``gate.enabled``, see ``config.gate.is_gated``): forward +
  backward all ``n``;
* ``forward_all``: a no-grad forward of all ``n`` gives fresh scores, then forward + backward the ``k``
  kept samples (``n + k`` forwards, ``k`` backwards: the backward is what is saved);
* ``stale_scores``: the gate decides on each sample's score from the last time it was seen, so only the
  ``k`` kept samples are forwarded and backwarded (``k`` forwards, ``k`` backwards).

The kept loss is ``sum(weight_i * loss_i) / n``. With the gate's 1/p weights (``gate.importance_weights``,
logistic mode) it is an unbiased estimate of the batch's mean loss. Without them (``importance_weights:
false`` or ``top_fraction``) every weight is 1: the loss is the kept samples' mean scaled by ``k / n``
(about ``target_rate``), which acts as a smaller learning rate and favours the high scorers; kept this way
on purpose (the recorded gated language runs use it). Forward and backward passes are counted in samples.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from ast_robot.config.train import TrainConfig
from ast_robot.core import checkpoint as ckpt
from ast_robot.core import distributed
from ast_robot.core.callbacks import Callback, CallbackList
from ast_robot.core.data import Batch, Dataset, EpochSampler
from ast_robot.core.gate import Gate
from ast_robot.core.precision import autocast, check_amp, is_oom, make_scaler, resolve_device
from ast_robot.core.significance import ScoreInputs, SignificanceModel

log = logging.getLogger(__name__)


class LossOutput(NamedTuple):
    """What a per-sample loss function returns; optional fields feed the significance model."""

    losses: torch.Tensor  # (B,) per-sample loss
    logits: torch.Tensor | None = None  # (B, C) classification logits (uncertainty)
    embeddings: torch.Tensor | None = None  # (B, D) (novelty)
    variance: torch.Tensor | None = None  # (B,) predicted variance / disagreement (uncertainty)
    grad_target: torch.Tensor | None = None  # (B, ...) output whose per-row gradient norm is recorded
    physical: torch.Tensor | None = None  # (B,) real-robot feedback weight in [0, 1] (physical component)
    groups: torch.Tensor | None = None  # (B,) long: row kind; the loss score is z-scored within each (loss_groups)


LossFn = Callable[[nn.Module, Batch], LossOutput]


@dataclass
class Counters:
    """Running totals of a training run (samples, not batches)."""

    samples_seen: int = 0
    forward_samples: int = 0
    backward_samples: int = 0
    nonfinite_steps: int = 0
    oom_halvings: int = 0
    train_seconds: float = 0.0
    last_loss: float = float("nan")

    @property
    def kept_fraction(self) -> float:
        return self.backward_samples / self.samples_seen if self.samples_seen else 0.0

    def summary(self) -> dict[str, float]:
        out = {k: float(v) for k, v in asdict(self).items()}
        out["kept_fraction"] = self.kept_fraction
        out["throughput"] = self.samples_seen / self.train_seconds if self.train_seconds else 0.0
        return out


def score_inputs(batch: Batch, out: LossOutput) -> ScoreInputs:
    return ScoreInputs(batch.indices, out.losses.detach(), _detach(out.logits), _detach(out.variance),
                       _detach(out.embeddings), _detach(out.physical), _detach(out.groups))  # fmt: skip


def _detach(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


class Trainer:
    """Trains ``model`` on ``data`` for ``cfg.steps`` optimizer steps (see the module docstring)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer, data: Dataset,
                 cfg: TrainConfig, *, significance: SignificanceModel | None = None, gate: Gate | None = None,
                 scheduler: Any = None, callbacks: Sequence[Callback] = (), run: Any = None,
                 config_text: str = "", seed: int = 0, rank: int = 0, world: int = 1,
                 show_progress: bool = True) -> None:  # fmt: skip
        self.device = resolve_device(cfg.device)
        check_amp(cfg.amp, self.device)
        self.gated = gate is not None  # whether a run gets a gate is decided by config.gate.is_gated
        if self.gated and significance is None:
            raise ValueError("a gate needs a significance model (significance=SignificanceModel(...))")
        if self.gated:
            self._check_gating(cfg, significance, gate, loss_fn, world)
        self.model, self.loss_fn, self.optimizer, self.data, self.cfg = model, loss_fn, optimizer, data, cfg
        self.significance, self.gate, self.scheduler, self.run = significance, gate, scheduler, run
        self.callback = CallbackList(list(callbacks))
        self.config_text, self.show_progress = config_text, show_progress
        self.sampler = EpochSampler(len(data), cfg.batch_size, seed=seed, rank=rank, world=world)
        self.scaler = make_scaler(cfg.amp, self.device)
        self.accum = cfg.grad_accum  # micro-batches per step; doubled on CUDA OOM
        self.step = 0
        self._saved_step: int | None = None  # the step of the latest checkpoint written
        self.counters = Counters()
        self.is_main, self.world = rank == 0, world
        # Per-sample gradient norms feed only the learning-value predictor; skip the bookkeeping otherwise.
        self._wants_grad_norms = (self.gated and "learning_value" in significance.components
                                  and significance.cfg.weights.get("learning_value", 0) > 0)  # fmt: skip

    @staticmethod
    def _check_gating(cfg: TrainConfig, significance: SignificanceModel, gate: Gate, loss_fn: LossFn,
                      world: int) -> None:  # fmt: skip
        if gate.cfg.scoring == "stale_scores" and significance.stale is None:
            raise ValueError("gate.scoring 'stale_scores' needs significance.stale_scores: true")
        gate.check_batch_size(cfg.batch_size)
        if world > 1 and gate.cfg.min_keep < 1:
            # A rank that keeps nothing runs no backward while the others wait in DDP's all-reduce.
            raise ValueError(f"gate.min_keep {gate.cfg.min_keep}: must be >= 1 with {world} DDP processes, or "
                             "a rank that keeps no sample would leave the others waiting for its gradients")  # fmt: skip

    # ------------------------------------------------------------------------------------------ loop
    def fit(self, steps: int | None = None) -> Counters:
        """Train until ``steps`` (default ``cfg.steps``) optimizer steps are done or a callback stops."""
        from ast_robot.runlog import progress

        total = self.cfg.steps if steps is None else steps
        self.callback.init_callback(self)
        self.callback.on_training_start()
        with progress("train", total, enabled=self.show_progress and self.is_main) as advance:
            advance(self.step)
            while self.step < total:
                batch = self.data.get(self.sampler.next()).to(self.device)
                start = time.perf_counter()
                self.train_step(batch)
                self.counters.train_seconds += time.perf_counter() - start
                self._log(advance)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if not self.callback.on_step():
                    break
        self.callback.on_training_end()
        if self.run is not None:
            if self._saved_step != self.step:  # checkpoint_every may have written this step already
                self.save()
            self.run.close()
        return self.counters

    def train_step(self, batch: Batch) -> None:
        """One optimizer step on one batch (gate, micro-batched forward/backward, guarded update)."""
        self.model.train()
        keep, weights, scored = self._decide(batch)
        kept = batch.select(keep)
        loss, signals, grad_norms = self._backward(kept, weights[keep].to(self.device), batch.size)
        if self.gated:
            self._learn_significance(batch.indices, keep, scored, signals, grad_norms)
        self.counters.samples_seen += batch.size
        self._update(loss)
        self.step += 1

    # ------------------------------------------------------------------------------------------ gating
    def _decide(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, ScoreInputs | None]:
        """(keep (B,) bool, weights (B,) float, signals of the scoring forward of the whole batch or None).

        Counts the scoring forward of ``forward_all``."""
        if not self.gated:
            return torch.ones(batch.size, dtype=torch.bool), torch.ones(batch.size), None
        if self.gate.cfg.scoring == "stale_scores":
            scores, was_kept = self.significance.stale.lookup(batch.indices)
            unseen = ~self.significance.stale.is_seen(batch.indices)  # no score yet: keep, outside rate control
            return (*self.gate(scores, was_kept, force=unseen), None)
        with torch.no_grad(), autocast(self.cfg.amp, self.device):
            out = self.loss_fn(self.model, batch)
        self.counters.forward_samples += batch.size
        scored = score_inputs(batch, out)
        return (*self.gate(self.significance.score(scored)), scored)

    def _learn_significance(self, indices: torch.Tensor, keep: torch.Tensor, scored: ScoreInputs | None,
                            signals: ScoreInputs | None, grad_norms: torch.Tensor | None) -> None:  # fmt: skip
        """Fit the significance model on every sample it saw this step, then remember scores (stale mode).

        ``forward_all`` scored the whole batch: its running statistics learn from all of it (the kept
        samples alone are the high scorers, and fitting on them drifts the mean up); only the gradient-norm
        predictor learns from the kept samples, the only ones with measured norms. In stale mode only the
        kept samples were forwarded, so they are all there is."""
        sig = self.significance
        if scored is not None:
            sig.update(scored)
            if signals is not None and grad_norms is not None:
                sig.learn_grad_norms(signals, grad_norms)
        elif signals is not None:
            sig.update(signals, grad_norms)
        if sig.stale is not None:
            self._remember_scores(indices, keep, scored if scored is not None else signals)

    def _remember_scores(self, indices: torch.Tensor, keep: torch.Tensor, fresh: ScoreInputs | None) -> None:
        """Store fresh scores and this step's kept flags (also when nothing was kept: no stale flags stay).

        Under DDP every rank reads a new slice of the permutation each epoch, so each rank stores what all
        ranks saw: one shared table, in which a sample seen by any rank counts as seen."""
        sig = self.significance
        seen, scores = (fresh.indices, sig.score(fresh)) if fresh is not None else (indices[:0], torch.zeros(0))
        indices, keep = indices.cpu(), keep.cpu()
        if self.world > 1:
            seen, scores, indices, keep = distributed.all_gather_rows(seen.cpu(), scores, indices, keep)
        sig.stale.store(seen, scores)
        sig.stale.mark_kept(indices, keep)

    # ------------------------------------------------------------------------------------------ backward
    def _backward(self, kept: Batch, weights: torch.Tensor, n: int):
        """Forward + backward the kept samples in micro-batches; on CUDA OOM halve them and retry."""
        while True:
            try:
                return self._accumulate(kept, weights, n)
            except RuntimeError as err:
                chunk = -(-kept.size // self.accum)
                if not is_oom(err) or chunk <= 1:
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.accum *= 2
                self.counters.oom_halvings += 1
                log.warning("out of memory at micro-batch %d: halving to %d, accumulating %d micro-batches",
                            chunk, -(-kept.size // self.accum), self.accum)  # fmt: skip

    def _accumulate(self, kept: Batch, weights: torch.Tensor, n: int):
        """Returns (summed weighted loss, ScoreInputs of the kept samples, per-sample grad norms)."""
        self.optimizer.zero_grad(set_to_none=True)
        chunks, total = kept.split(self.accum), torch.zeros((), device=self.device)
        parts, norms, w_parts = [], [], weights.split(-(-kept.size // self.accum)) if kept.size else []
        for i, (chunk, w) in enumerate(zip(chunks, w_parts)):
            with self._no_sync(i < len(chunks) - 1), autocast(self.cfg.amp, self.device):
                out = self.loss_fn(self.model, chunk)
                if self._wants_grad_norms:
                    self._retain_grad_target(out)
                loss = (w * out.losses.float()).sum() / n  # 1/p weights: unbiased batch mean (else scaled k/n)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            total += loss.detach()
            parts.append(score_inputs(chunk, out))
            norms.append(self._grad_norms(out, w, n))
        self.counters.forward_samples += kept.size
        self.counters.backward_samples += kept.size
        if not parts:
            return total, None, None
        signals = ScoreInputs(*(None if f[0] is None else torch.cat(f) for f in zip(*parts)))
        return total, signals, None if any(g is None for g in norms) else torch.cat(norms)

    @staticmethod
    def _retain_grad_target(out: LossOutput) -> None:
        """Keep ``grad_target``'s gradient for the learning-value predictor, which learns only from it."""
        if out.grad_target is None or not out.grad_target.requires_grad:
            raise ValueError("significance component 'learning_value' learns from per-sample gradient norms, "
                             "but this trainer's loss returns no grad_target (LossOutput.grad_target: an output "
                             "that requires grad); remove learning_value from significance.weights")  # fmt: skip
        out.grad_target.retain_grad()

    def _grad_norms(self, out: LossOutput, w: torch.Tensor, n: int) -> torch.Tensor | None:
        """(b,) per-sample gradient norm w.r.t. ``grad_target``, undoing the 1/p weight and 1/n."""
        g = out.grad_target.grad if self._wants_grad_norms and out.grad_target is not None else None
        if g is None:
            return None
        scale = self.scaler.get_scale() if self.scaler else 1.0
        per_row = g.detach().float().flatten(1).norm(dim=1) / scale
        return (per_row * n / w.clamp_min(1e-12)).cpu()

    def _no_sync(self, skip_sync: bool) -> Any:
        import contextlib

        if skip_sync and hasattr(self.model, "no_sync"):
            return self.model.no_sync()  # DDP: all-reduce gradients only on the last micro-batch
        return contextlib.nullcontext()

    # ------------------------------------------------------------------------------------------ update
    def _update(self, loss: torch.Tensor) -> None:
        """Clip, check for NaN/inf, step the optimizer and scheduler (or skip and count)."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        clip = self.cfg.grad_clip if self.cfg.grad_clip is not None else math.inf
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self.counters.nonfinite_steps += 1
            if self.scaler:
                self.scaler.update()
            log.warning("step %d: non-finite loss or gradient, step skipped (%d so far)", self.step,
                        self.counters.nonfinite_steps)  # fmt: skip
            if self.counters.nonfinite_steps > self.cfg.max_nonfinite_steps:
                raise FloatingPointError(f"stopped: {self.counters.nonfinite_steps} steps with NaN/inf loss or "
                                         f"gradients (train.max_nonfinite_steps = {self.cfg.max_nonfinite_steps})")  # fmt: skip
            return
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.counters.last_loss = float(loss)

    def _log(self, advance: Callable[..., None]) -> None:
        c = self.counters
        info = {"loss": c.last_loss, "kept": c.kept_fraction}
        if self.gated:
            info["thr"] = self.gate.threshold
        advance(1, **info)
        if self.run is not None and self.is_main and self.step % self.cfg.log_every == 0:
            scalars = c.summary()
            if self.gated:
                scalars.update(threshold=self.gate.threshold, gate_rate=self.gate.last_rate)
            self.run.scalars(scalars, self.step, prefix="train/")

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        model = self.model.module if hasattr(self.model, "module") else self.model
        state = {"model": model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "sampler": self.sampler.state_dict(), "counters": asdict(self.counters), "accum": self.accum}  # fmt: skip
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self.gate is not None:
            state["gate"] = self.gate.state_dict()
        if self.significance is not None:
            state["significance"] = self.significance.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = self.model.module if hasattr(self.model, "module") else self.model
        ckpt.load_module_state(model, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        self.counters = Counters(**state["counters"])
        self.accum = int(state["accum"])
        for name, obj in (("scheduler", self.scheduler), ("scaler", self.scaler), ("gate", self.gate),
                          ("significance", self.significance)):  # fmt: skip
            if obj is not None and name in state:
                obj.load_state_dict(state[name])

    def save(self) -> Any:
        """Checkpoint to ``run.path/ckpt-<step>`` (main process only); returns the path or None."""
        if self.run is None or not self.is_main:
            return None
        path = ckpt.save_checkpoint(self.run.path, self.step, self.state_dict(), self.config_text,
                                    keep_last=self.cfg.keep_last or None)  # fmt: skip
        self._saved_step = self.step
        return path

    def resume(self, path: Any) -> int:
        """Restore everything from a checkpoint (weights, optimizer, gate, RNGs, data position)."""
        from ast_robot.fileio import reading

        loaded = ckpt.load_checkpoint(path, map_location="cpu")  # RNG states must stay on the CPU
        with reading(loaded.path / ckpt.STATE_FILE, "a trainer checkpoint of this experiment (model, optimizer, "
                     "sampler, counters and RNG states of the same network)"):  # fmt: skip
            self.load_state_dict(loaded.state)
            ckpt.set_rng_state(loaded.state["rng"])
        self.step = loaded.step
        return self.step
