"""The replay residuals a fit minimises: simulated minus real joints of every record at a parameter vector,
the trajectory loss, and the screen of parameters that change the replay at all."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ast_robot.gap.space import ParamSpace, is_offset
from ast_robot.records import EpisodeRecord

Simulator = Callable[[Mapping[str, float], EpisodeRecord], np.ndarray]
# Residual sets kept for a repeated parameter vector (a replay is deterministic): the scan's passes revisit their
# base point and clipped grid ends, the F-tests and intervals re-evaluate the nominal model and the fit. Heavy-
# slippery round 1 (8 pick episodes, 401 x 6 joints): 154 kB a set, 20 MB at most.
MEMO_SETS = 128


def trajectory_loss(
    simulate: Simulator, params: Mapping[str, float], records: Sequence[EpisodeRecord]
) -> float:
    """Mean squared joint-position error (rad^2) between simulated replays and the measured trajectories."""
    errors = []
    for rec in records:
        sim = np.asarray(simulate(params, rec), dtype=float)
        if sim.shape != rec.joint_positions.shape:
            raise ValueError(f"simulate() returned shape {sim.shape}; expected {rec.joint_positions.shape} "
                             f"(T+1 joint positions) for episode seed {rec.seed}")  # fmt: skip
        errors.append(np.mean((sim - rec.joint_positions) ** 2))
    return float(np.mean(errors))


class Replays:
    """Residuals (sim - real) of every record at a parameter vector; unfitted parameters held fixed."""

    def __init__(self, simulate: Simulator, records: Sequence[EpisodeRecord], space: ParamSpace,
                 fixed: Mapping[str, float]) -> None:  # fmt: skip
        self.simulate, self.records, self.space, self.fixed = simulate, list(records), space, dict(fixed)
        self.offsets = np.array([i for i, n in enumerate(space.names) if is_offset(n)], dtype=int)
        self.joints = np.array([int(space.names[i].rsplit("_", 1)[1]) for i in self.offsets], dtype=int)
        self._memo: OrderedDict[tuple[float, ...], list[np.ndarray]] = OrderedDict()
        self.replays, self.repeats = 0, 0  # parameter vectors replayed, and answered from the memo

    def residuals(self, values: np.ndarray) -> list[np.ndarray]:
        """Residuals (T+1, J) per record, read-only: a vector replayed before is answered from memory (the
        simulator is deterministic: the same vector gives the same bits)."""
        key = tuple(float(v) for v in values)
        if key in self._memo:
            self.repeats += 1
            self._memo.move_to_end(key)
            return self._memo[key]
        params = {**self.fixed, **dict(zip(self.space.names, key))}
        many = getattr(self.simulate, "many", None)  # a simulator that replays several records at once
        sims = many(params, self.records) if many is not None else [self.simulate(params, r) for r in self.records]
        out = [np.asarray(q, dtype=float) - r.joint_positions for q, r in zip(sims, self.records)]
        for r in out:
            r.setflags(write=False)
        self.replays += 1
        self._memo[key] = out
        if len(self._memo) > MEMO_SETS:
            self._memo.popitem(last=False)
        return out

    def loss(self, values: np.ndarray) -> float:
        return float(np.mean([np.mean(r**2) for r in self.residuals(values)]))

    def rss(self, values: np.ndarray) -> float:
        return float(sum(np.sum(r**2) for r in self.residuals(values)))

    def stacked(self, values: np.ndarray) -> np.ndarray:
        return np.concatenate([r.ravel() for r in self.residuals(values)])

    def scaled(self, values: np.ndarray) -> np.ndarray:
        """:meth:`stacked` over the square root of its size: its sum of squares is the mean loss (for least squares)."""
        r = self.stacked(values)
        return r / np.sqrt(r.size)

    def profile(self, values: np.ndarray) -> np.ndarray:
        """``values`` with each encoder offset at its closed-form best (the mean residual of its joint,
        with the offsets zeroed); unchanged without offsets."""
        if self.offsets.size == 0:
            return values
        out = values.copy()
        out[self.offsets] = 0.0
        res = np.concatenate([r[1:] for r in self.residuals(out)])  # (sum T, J)
        out[self.offsets] = -res[:, self.joints].mean(axis=0)
        return out

    def profiled_loss(self, values: np.ndarray) -> float:
        return self.loss(self.profile(values)) if self.offsets.size else self.loss(values)

def observable(simulate: Simulator, records: Sequence[EpisodeRecord], space: ParamSpace,
               tolerance: float) -> tuple[str, ...]:  # fmt: skip
    """Names whose value, moved alone to either end of the search box, changes the simulated joint
    trajectories by more than ``tolerance`` rad RMS; the others cannot be fitted from these data."""
    nominal = np.asarray(space.nominal)
    base = [np.asarray(simulate(space.as_dict(nominal), r)) for r in records]
    keep = []
    for i, name in enumerate(space.names):
        change = 0.0
        for end in (space.search_low[i], space.search_high[i]):
            values = nominal.copy()
            values[i] = end
            sims = [np.asarray(simulate(space.as_dict(values), r)) for r in records]
            change = max(change, float(np.sqrt(np.mean([np.mean((a - b) ** 2) for a, b in zip(sims, base)]))))
        if change > tolerance:
            keep.append(name)
    return tuple(keep)
