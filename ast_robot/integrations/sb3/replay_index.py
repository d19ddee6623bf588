"""Replay transitions by index: draw indices, keep per-transition signals, fetch only what is trained on.

SB3's ``buffer.sample(n)`` draws indices and builds the batch (HER relabelling, normalization, tensors) in
one call. Gated SAC with stored scores decides from the indices first and builds only the transitions it
trains on, so it needs the two halves apart. This module is the one place that touches SB3's buffer
internals (``_get_samples``; HER's ``ep_length``, ``_get_real_samples`` and ``_get_virtual_samples``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th

try:
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError('replay by index needs stable-baselines3: pip install "ast-robot[sb3]"') from err

_NON_STATE_KEYS = ("camera", "instruction")  # pixels and bytes say little about the novelty of a state


def check_indexable(buffer: Any) -> None:
    """Raise if ``buffer`` is one this module cannot draw from by index."""
    if isinstance(buffer, HerReplayBuffer):
        return
    if not isinstance(buffer, (ReplayBuffer, DictReplayBuffer)):
        raise ValueError(f"stored scores: replay buffer {type(buffer).__name__} is not supported; "
                         "use SB3's ReplayBuffer, DictReplayBuffer or HerReplayBuffer")  # fmt: skip
    if buffer.n_envs != 1 or getattr(buffer, "optimize_memory_usage", False):
        raise ValueError("stored scores: a plain replay buffer must have one env and optimize_memory_usage off "
                         f"(got n_envs={buffer.n_envs}); HerReplayBuffer supports several envs")  # fmt: skip


def valid_mask(buffer: Any) -> np.ndarray:
    """(buffer_size, n_envs) bool: the transitions ``buffer.sample`` may return now."""
    if isinstance(buffer, HerReplayBuffer):
        return buffer.ep_length > 0  # transitions of finished episodes only, as HER samples
    mask = np.zeros((buffer.buffer_size, buffer.n_envs), dtype=bool)
    mask[: buffer.buffer_size if buffer.full else buffer.pos] = True
    return mask


class Drawer:
    """Draws (row, env) indices uniformly with replacement from the transitions valid when it was made, as
    SB3 draws them (make one per ``train`` call: the buffer does not change while it trains)."""

    def __init__(self, buffer: Any) -> None:
        mask = valid_mask(buffer)
        self.flat = np.flatnonzero(mask)
        self.shape = mask.shape
        if self.flat.size == 0:
            raise RuntimeError("the replay buffer holds no finished transition yet: raise learning_starts")

    def __call__(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        picked = np.random.choice(self.flat, size=n, replace=True)  # SB3's global RNG, seeded by set_random_seed
        rows, envs = np.unravel_index(picked, self.shape)
        return rows, envs


def fetch(buffer: Any, rows: np.ndarray, envs: np.ndarray, vec_normalize: Any) -> Any:
    """The samples at those indices, in their order, built as ``buffer.sample`` builds them (HER: the first
    ``her_ratio`` of them get relabelled goals; indices arrive in random order, so that share is a random subset)."""
    if not isinstance(buffer, HerReplayBuffer):
        return buffer._get_samples(rows, env=vec_normalize)  # n_envs == 1 (check_indexable): env index 0
    n_virtual = int(buffer.her_ratio * rows.shape[0])
    parts = []
    if n_virtual > 0:
        parts.append(buffer._get_virtual_samples(rows[:n_virtual], envs[:n_virtual], vec_normalize))
    if n_virtual < rows.shape[0]:
        parts.append(buffer._get_real_samples(rows[n_virtual:], envs[n_virtual:], vec_normalize))
    if len(parts) == 1:
        return parts[0]
    return type(parts[0])(*(_cat(v, r) for v, r in zip(*parts)))


def _cat(a: Any, b: Any) -> Any:
    if a is None:
        return None
    return {k: th.cat((a[k], b[k])) for k in a} if isinstance(a, dict) else th.cat((a, b))


def observations(buffer: Any, rows: np.ndarray, envs: np.ndarray, vec_normalize: Any) -> Any:
    """The observations at those indices as the policy sees them (normalized when training normalizes; goals as
    stored, not relabelled): what scoring by novelty or physical weight looks at, in both scoring modes."""
    obs = buffer.observations
    raw = {k: v[rows, envs] for k, v in obs.items()} if isinstance(obs, dict) else obs[rows, envs]
    return raw if vec_normalize is None else vec_normalize.normalize_obs(raw)


def state_features(obs: dict[str, Any] | Any) -> th.Tensor:
    """(n, D) float view of the state part of (possibly dict) observations, numpy or torch (novelty's input)."""
    if isinstance(obs, dict):
        parts = [th.as_tensor(obs[k]).reshape(len(obs[k]), -1).float() for k in sorted(obs) if k not in _NON_STATE_KEYS]
        return th.cat(parts, dim=1)
    return th.as_tensor(obs).reshape(len(obs), -1).float()


class TransitionSignals:
    """The TD error and critic disagreement last measured for each stored transition (NaN: not yet trained on).

    A transition that was never trained on reads as the largest TD error seen so far (prioritized replay's
    rule: new data is looked at first). Slots the buffer overwrote since the last call are forgotten.
    """

    def __init__(self, buffer_size: int, n_envs: int) -> None:
        self.td = np.full((buffer_size, n_envs), np.nan, dtype=np.float32)
        self.disagreement = np.full((buffer_size, n_envs), np.nan, dtype=np.float32)
        self.td_max = 0.0
        self.disagreement_max = 0.0
        self.pos = 0  # the buffer's write row when last seen

    def forget_written(self, pos: int) -> None:
        """Forget the rows the buffer wrote since the last call (they hold new transitions now); ``pos`` is its
        write row. Needs fewer than buffer_size writes between calls (SB3 trains every train_freq steps)."""
        size = self.td.shape[0]
        rows = np.arange(self.pos, self.pos + (pos - self.pos) % size) % size
        self.pos = pos
        self.td[rows] = np.nan
        self.disagreement[rows] = np.nan

    def lookup(self, rows: np.ndarray, envs: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
        """(TD error (n,), disagreement (n,)) at those indices; never-trained ones read as the maxima."""
        td = np.nan_to_num(self.td[rows, envs], nan=self.td_max)
        disagreement = np.nan_to_num(self.disagreement[rows, envs], nan=self.disagreement_max)
        return th.from_numpy(td), th.from_numpy(disagreement)

    def store(self, rows: np.ndarray, envs: np.ndarray, td: th.Tensor, disagreement: th.Tensor) -> None:
        td_np, dis_np = td.detach().cpu().numpy(), disagreement.detach().cpu().numpy()
        self.td[rows, envs] = td_np
        self.disagreement[rows, envs] = dis_np
        self.td_max = max(self.td_max, float(td_np.max(initial=0.0)))
        self.disagreement_max = max(self.disagreement_max, float(dis_np.max(initial=0.0)))
