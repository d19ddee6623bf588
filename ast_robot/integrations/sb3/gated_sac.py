"""Stable-Baselines3 SAC with gated replay.

By default each gradient step samples a replay batch as SAC does, then scores every transition without gradients:
the TD error (the critic and target forwards SAC needs anyway), the critics' disagreement, the novelty of
the observation and, once real-robot data exists, a physical weight. Two gates act on those scores:

- the *step gate* skips the whole gradient step when the batch's value is low (no backward, no
  optimizer step, no target update);
- the *sample gate* keeps a target fraction of the batch; only kept transitions are forwarded with
  gradients and back-propagated, weighted by 1/p so the gradient stays an unbiased estimate.

The learned entropy temperature (one scalar) follows every scheduled step by default, skipped or not,
from the log-probabilities the scoring forward already computed: no network backward. Its decay from 1.0
(SB3's start) paces early learning (ungated and gated reach runs both jumped to 90% near 3000 updates
while the temperature was still falling), so tying it to the network updates taken would make every
skipped step also slow the temperature down.

Options (off by default; ``gate.sac.*`` in a config, and configs/experiments/reach_ur5e.yaml turns them on):
``target_every_step`` moves the target critics on every scheduled step too (their time constant stays 1/tau env
steps); ``candidate_factor`` draws and scores that many batches per step, so the sample gate picks the
transitions it trains on from a larger pool (PER-like, with 1/p weights); ``stored_scores`` scores each drawn
transition by the TD error and critic disagreement its last update measured (prioritized replay's rule;
never-trained transitions read as the largest TD error seen), so a skipped step costs no replay fetch and no
network forward at all: the gates decide from indices, and only the kept transitions are built (HER relabelling,
normalization) and forwarded. The temperature then steps from the latest update's log-probabilities.

SB3 has no hook for this, so :meth:`GatedSAC.train` replaces ``SAC.train``; ``save``/``load`` work as for
SAC (the gates and the significance model are saved with the model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F

from ast_robot.config.gate import GateConfig, SignificanceConfig
from ast_robot.core.gate import Gate
from ast_robot.core.significance import ScoreInputs, SignificanceModel
from ast_robot.integrations.sb3 import replay_index

try:
    from stable_baselines3 import SAC
    from stable_baselines3.common.utils import polyak_update
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError('gated SAC needs stable-baselines3: pip install "ast-robot[sb3]"') from err

PhysicalWeightFn = Callable[[dict[str, np.ndarray] | np.ndarray], np.ndarray]


def default_sample_gate() -> GateConfig:
    return GateConfig(target_rate=0.5, min_keep=32, importance_weights=True)


def default_step_gate(target_rate: float = 0.5) -> GateConfig:
    """The step gate: one score per batch (its mean), no floor on kept steps, no weights."""
    return GateConfig(target_rate=target_rate, min_keep=0, importance_weights=False, temperature=0.05)


class GatedSAC(SAC):
    """SAC whose gradient steps and transitions are chosen by significance (see the module docstring).

    Extra arguments: ``sample_gate`` / ``step_gate`` (GateConfig), ``significance`` (SignificanceConfig
    whose weights may name loss (TD error), uncertainty (critic disagreement), novelty and physical),
    and ``physical_weight`` (observations -> weights in [0, 1] from the gap analyzer, or None).
    """

    def __init__(self, *args: Any, sample_gate: GateConfig | None = None, step_gate: GateConfig | None = None,
                 significance: SignificanceConfig | None = None, physical_weight: PhysicalWeightFn | None = None,
                 temperature_every_step: bool = True, target_every_step: bool = False, candidate_factor: int = 1,
                 stored_scores: bool = False, **kwargs: Any) -> None:  # fmt: skip
        if candidate_factor < 1:
            raise ValueError(f"candidate_factor {candidate_factor}: must be a whole number >= 1")
        self.sample_gate_cfg = sample_gate or default_sample_gate()
        self.step_gate_cfg = step_gate or default_step_gate()
        self.significance_cfg = significance or SignificanceConfig(weights={"loss": 1.0, "uncertainty": 0.5})
        if self.significance_cfg.weights.get("learning_value", 0) > 0:  # it would score from an untrained MLP
            raise ValueError("significance.weights.learning_value: gated SAC measures no per-sample gradient "
                             "norms to train it on; use loss, uncertainty, novelty or physical")  # fmt: skip
        self.physical_weight = physical_weight
        self.temperature_every_step = temperature_every_step
        self.target_every_step = target_every_step
        self.candidate_factor = candidate_factor
        self.stored_scores = stored_scores
        self.gate_counts = {"steps_seen": 0, "steps_trained": 0, "transitions_seen": 0, "transitions_kept": 0}
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        # On `load`, the saved gates and significance model arrive through __dict__; keep them.
        seed = int(self.seed or 0)
        if getattr(self, "sample_gate", None) is None:
            self.sample_gate = Gate(self.sample_gate_cfg, seed=seed)
            self.step_gate = Gate(self.step_gate_cfg, seed=seed + 1)
            self.significance = SignificanceModel(self.significance_cfg)
        # here, not in __init__: also for models saved before these counters
        self.gate_counts.setdefault("temperature_updates", 0)
        self.gate_counts.setdefault("transitions_forward_scored", 0)  # scored by a no-gradient forward pass
        # The stored signals describe the replay buffer's contents, so like the buffer they are not saved.
        self.signals: replay_index.TransitionSignals | None = None
        self._last_log_prob: th.Tensor | None = None
        self._pending_target_steps = 0  # Polyak steps owed to the target critics (see _step_target)
        if self.stored_scores:
            replay_index.check_indexable(self.replay_buffer)
            # whether scoring looks at observations (novelty, physical weight), not only at stored TD signals
            needs = {f for comp in self.significance.components.values() for f in comp.needs}
            self._scores_need_obs = self.physical_weight is not None or "embeddings" in needs
            self.signals = replay_index.TransitionSignals(self.replay_buffer.buffer_size, self.replay_buffer.n_envs)

    def _excluded_save_params(self) -> list[str]:
        not_saved = ["physical_weight", "signals", "_last_log_prob", "_pending_target_steps", "_scores_need_obs"]
        return [*super()._excluded_save_params(), *not_saved]

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        logs: dict[str, list[float]] = {"actor_loss": [], "critic_loss": [], "ent_coef": [], "kept_fraction": []}
        draw = None
        if self.signals is not None:
            self.signals.forget_written(self.replay_buffer.pos)  # type: ignore[union-attr]
            draw = replay_index.Drawer(self.replay_buffer)
        n = batch_size * self.candidate_factor
        for _ in range(gradient_steps):
            if draw is not None:
                self._stored_step(draw(n), logs)
            else:
                self._gated_step(self.replay_buffer.sample(n, env=self._vec_normalize_env), logs)  # type: ignore[union-attr]
        self._flush_target()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            if values:
                self.logger.record(f"train/{key}", float(np.mean(values)))
        for key, value in self.gate_counts.items():
            self.logger.record(f"gate/{key}", value)

    # ------------------------------------------------------------------------------------------ steps
    def _gated_step(self, replay: Any, logs: dict[str, list[float]]) -> None:
        """A step on a freshly drawn batch, scored by a forward of the networks."""
        self._flush_target()
        target_q, td_error, disagreement, next_log_prob = self._score_signals(replay)
        self.gate_counts["transitions_forward_scored"] += target_q.shape[0]
        if self.temperature_every_step:
            self._update_temperature(next_log_prob, None)
        scores = self.significance.observe(ScoreInputs(
            indices=th.arange(target_q.shape[0]), losses=td_error.cpu(), variance=disagreement.pow(2).cpu(),
            embeddings=replay_index.state_features(replay.observations).cpu(),
            physical=self._physical(replay.observations)))  # fmt: skip
        kept = self._decide(scores, logs)
        if kept is not None:
            idx, w = kept
            idx = idx.to(self.device)
            self._update(_index_obs(replay.observations, idx), replay.actions[idx], target_q[idx], w, logs)
        self._step_target(trained=kept is not None)

    def _stored_step(self, drawn: tuple[np.ndarray, np.ndarray], logs: dict[str, list[float]]) -> None:
        """A step on drawn (rows, envs) indices decided from stored signals: only the kept transitions are
        fetched and forwarded."""
        rows, envs = drawn
        n = rows.shape[0]
        if self.temperature_every_step and self._last_log_prob is not None:
            self._update_temperature(self._last_log_prob, None)
        td_error, disagreement = self.signals.lookup(rows, envs)  # type: ignore[union-attr]
        obs = None
        if self._scores_need_obs:
            obs = replay_index.observations(self.replay_buffer, rows, envs, self._vec_normalize_env)
        scores = self.significance.observe(ScoreInputs(
            indices=th.arange(n), losses=td_error, variance=disagreement.pow(2),
            embeddings=None if obs is None else replay_index.state_features(obs),
            physical=None if obs is None else self._physical(obs)))  # fmt: skip
        kept = self._decide(scores, logs)
        if kept is not None:
            idx, w = kept
            rows, envs = rows[idx.numpy()], envs[idx.numpy()]
            replay = replay_index.fetch(self.replay_buffer, rows, envs, self._vec_normalize_env)
            self._flush_target()
            target_q, _ = self._target_q(replay)
            td_error, disagreement = self._update(replay.observations, replay.actions, target_q, w, logs)
            self.signals.store(rows, envs, td_error, disagreement)  # type: ignore[union-attr]
        self._step_target(trained=kept is not None)

    def _decide(self, scores: th.Tensor, logs: dict[str, list[float]]) -> tuple[th.Tensor, th.Tensor] | None:
        """The step gate, then the sample gate: (kept indices (K,), weights (K, 1)), or None for a skipped step."""
        n = scores.shape[0]
        self.gate_counts["steps_seen"] += 1
        self.gate_counts["transitions_seen"] += n
        step_keep, _ = self.step_gate(scores.mean().reshape(1))
        if not bool(step_keep[0]):
            return None  # the whole batch is low-value: no backward, no optimizer step
        keep, weights = self.sample_gate(scores)
        idx = keep.nonzero().squeeze(1)
        w = weights[keep].to(self.device).reshape(-1, 1)
        w = w / w.mean()  # ungated SAC's loss scale; self-normalized 1/p weights: consistent, slightly biased
        self.gate_counts["steps_trained"] += 1
        self.gate_counts["transitions_kept"] += int(idx.numel())
        logs["kept_fraction"].append(idx.numel() / n)
        return idx, w

    def _step_target(self, trained: bool) -> None:
        """SAC's target-update schedule, counted in scheduled steps (target_every_step) or trained ones.

        The steps are owed and paid by :meth:`_flush_target` before the targets are next read: while no
        update moves the critics, k Polyak steps of size tau equal one of size 1 - (1 - tau)^k, so skipped
        steps cost nothing here."""
        if trained or self.target_every_step:
            count = self.gate_counts["steps_seen" if self.target_every_step else "steps_trained"]
            if count % self.target_update_interval == 0:
                self._pending_target_steps += 1

    def _flush_target(self) -> None:
        if self._pending_target_steps:
            self._update_target(self._pending_target_steps)
            self._pending_target_steps = 0

    @th.no_grad()
    def _target_q(self, replay: Any) -> tuple[th.Tensor, th.Tensor]:
        """SAC's TD target (B, 1) and the actor's log-probability of its next actions (B, 1), without gradients."""
        discounts = replay.discounts if getattr(replay, "discounts", None) is not None else self.gamma
        next_actions, next_log_prob = self.actor.action_log_prob(replay.next_observations)
        next_log_prob = next_log_prob.reshape(-1, 1)
        next_q = th.cat(self.critic_target(replay.next_observations, next_actions), dim=1)
        next_q = th.min(next_q, dim=1, keepdim=True).values - self._ent_coef() * next_log_prob
        return replay.rewards + (1 - replay.dones) * discounts * next_q, next_log_prob

    @th.no_grad()
    def _score_signals(self, replay: Any) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """SAC's target Q (B, 1), the TD error (B,), the critics' disagreement (B,) and the actor's log-probability
        of its next actions (B, 1), without gradients."""
        target_q, next_log_prob = self._target_q(replay)
        td_error, disagreement = _td_signals(th.cat(self.critic(replay.observations, replay.actions), dim=1), target_q)
        return target_q, td_error, disagreement, next_log_prob

    def _physical(self, obs: Any) -> th.Tensor | None:
        """The physical weight (B,) of (possibly dict) observations, torch or numpy; None without real data."""
        if self.physical_weight is None:
            return None
        as_np = lambda v: v.cpu().numpy() if isinstance(v, th.Tensor) else np.asarray(v)  # noqa: E731
        obs = {k: as_np(v) for k, v in obs.items()} if isinstance(obs, dict) else as_np(obs)
        return th.as_tensor(np.asarray(self.physical_weight(obs), dtype=np.float32))

    def _learns_temperature(self) -> bool:
        return self.ent_coef_optimizer is not None and self.log_ent_coef is not None

    def _ent_coef(self) -> th.Tensor:
        """The current entropy coefficient, without gradient (learned or fixed)."""
        return th.exp(self.log_ent_coef.detach()) if self._learns_temperature() else self.ent_coef_tensor

    def _update_temperature(self, log_prob: th.Tensor, w: th.Tensor | None) -> None:
        """SAC's entropy-temperature step from log-probabilities (B, 1) (weights ``w``, or none); no-op when fixed."""
        if not self._learns_temperature():
            return
        gap = (log_prob + self.target_entropy).detach()
        ent_coef_loss = -(self.log_ent_coef * (gap if w is None else gap * w)).mean()
        self.ent_coef_optimizer.zero_grad()
        ent_coef_loss.backward()
        self.ent_coef_optimizer.step()
        self.gate_counts["temperature_updates"] += 1

    def _update_target(self, steps: int = 1) -> None:
        """``steps`` of SAC's Polyak step of the target critics at once (and a copy of batch-norm statistics)."""
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), 1.0 - (1.0 - self.tau) ** steps)
        polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def _update(self, obs: Any, actions: th.Tensor, target_q: th.Tensor, w: th.Tensor,
                logs: dict[str, list[float]]) -> tuple[th.Tensor, th.Tensor]:  # fmt: skip
        """One SAC update (entropy unless it follows every step, critic, actor) on the kept transitions with
        weights ``w`` (K, 1); returns the TD error (K,) and critic disagreement (K,) its critic forward measured."""
        actions_pi, log_prob = self.actor.action_log_prob(obs)
        log_prob = log_prob.reshape(-1, 1)
        self._last_log_prob = log_prob.detach()
        ent_coef = self._ent_coef()
        if not self.temperature_every_step:
            self._update_temperature(log_prob, w)
        current_q = self.critic(obs, actions)
        td_error, disagreement = _td_signals(th.cat(current_q, dim=1).detach(), target_q)
        critic_loss = 0.5 * sum((w * F.mse_loss(q, target_q, reduction="none")).mean() for q in current_q)
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()
        q_pi = th.min(th.cat(self.critic(obs, actions_pi), dim=1), dim=1, keepdim=True).values
        actor_loss = (w * (ent_coef * log_prob - q_pi)).mean()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        logs["actor_loss"].append(actor_loss.item())
        logs["critic_loss"].append(critic_loss.item())
        logs["ent_coef"].append(float(ent_coef))
        return td_error, disagreement


def _td_signals(current_q: th.Tensor, target_q: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """(B, n_critics) critic values and (B, 1) targets -> TD error (B,) and the critics' disagreement (B,)."""
    td_error = (current_q - target_q).abs().mean(dim=1)
    disagreement = current_q.std(dim=1) if current_q.shape[1] > 1 else th.zeros_like(td_error)
    return td_error, disagreement


def _index_obs(obs: Any, idx: th.Tensor) -> Any:
    return {k: v[idx] for k, v in obs.items()} if isinstance(obs, dict) else obs[idx]

