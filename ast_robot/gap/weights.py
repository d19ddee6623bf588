"""Physical-feedback weights: a small model over randomization values, high where real failures cluster.

The significance model's `physical` component calls ``weights(info["dr"])`` (or ``weights.batch``)
and gets a score in [0, 1]: ``strength * exp(-0.5 * sum(((theta - centre) / scale) ** 2))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ast_robot.gap.features import outcome_features, randomization_matrix
from ast_robot.records import EpisodeRecord


@dataclass(frozen=True)
class PhysicalWeights:
    """A Gaussian bump in parameter space, scaled by how often the real robot failed."""

    names: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    strength: float  # in [0, 1]: the real failure rate
    source: str = ""  # how the centre was found ("real failures (nearest sim episodes)", "sysid posterior")

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.centre) == len(self.scale)):
            raise ValueError(f"names, centre and scale must have one entry per parameter, got "
                             f"{len(self.names)}, {len(self.centre)}, {len(self.scale)}")  # fmt: skip
        if any(not s > 0 for s in self.scale):
            raise ValueError(f"scale must be > 0 for every parameter, got {self.scale}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")

    def batch(self, theta: np.ndarray) -> np.ndarray:
        """(N, P) parameter values in ``names`` order -> (N,) weights in [0, 1]."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[1] != len(self.names):
            raise ValueError(
                f"theta must have {len(self.names)} columns ({self.names}), got shape {theta.shape}"
            )
        z = (theta - np.asarray(self.centre)) / np.asarray(self.scale)  # (N, P)
        return self.strength * np.exp(-0.5 * np.sum(z**2, axis=1))

    def batch_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Weights from per-parameter columns (name -> (N,) values, e.g. stored ``info["dr"]`` of N
        transitions); a parameter missing from ``columns`` counts as being at the centre."""
        if not columns:
            raise ValueError(f"columns must map parameter names {self.names} to (N,) arrays; got none")
        n = len(np.asarray(next(iter(columns.values()))).reshape(-1))
        theta = np.column_stack([np.asarray(columns[k], dtype=float).reshape(-1) if k in columns
                                 else np.full(n, c) for k, c in zip(self.names, self.centre)])  # fmt: skip
        return self.batch(theta)

    def __call__(self, dr: Mapping[str, float]) -> float:
        """Weight of one episode from its randomization values (``info["dr"]``); missing names count as centre."""
        row = [float(dr.get(n, c)) for n, c in zip(self.names, self.centre)]
        return float(self.batch(np.array([row]))[0])

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "centre": list(self.centre), "scale": list(self.scale),
                "strength": self.strength, "source": self.source}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhysicalWeights:
        known = {"names", "centre", "scale", "strength", "source"}
        if (
            not isinstance(data, Mapping)
            or set(data) - known
            or not {"names", "centre", "scale", "strength"} <= set(data)
        ):
            raise ValueError(
                f"physical weights must be a mapping with keys {sorted(known)}, got {data!r:.200}"
            )
        return cls(tuple(data["names"]), tuple(map(float, data["centre"])), tuple(map(float, data["scale"])),
                   float(data["strength"]), str(data.get("source", "")))  # fmt: skip


def weights_from_failures(sim: Sequence[EpisodeRecord], real: Sequence[EpisodeRecord], names: Sequence[str],
                          k: int = 5) -> PhysicalWeights | None:  # fmt: skip
    """Locate real failures in parameter space through the sim episodes whose outcomes look most like them.

    Each real failure is matched to its ``k`` nearest sim episodes in standardized outcome-feature
    space; the randomization values of those matches give the bump's centre and spread. Returns None
    when the real robot never failed, no parameter is randomized or no outcome feature varies in sim.
    """
    failures = [r for r in real if not r.success]
    if not failures or not names:
        return None
    track = all(r.joint_targets is not None for r in (*sim, *real))
    fs, fr = outcome_features(sim, track), outcome_features(failures, track)
    # A feature constant across sim (e.g. `success` when every sim episode succeeded) carries no
    # information about where in parameter space an outcome happened; scaling it by a tiny std would
    # make it dominate every distance and wash out the real differences, so it is left out.
    varying = np.ptp(fs, axis=0) > 0  # exact: std() of a constant column can come out as 1e-15
    if not varying.any():
        return None
    fs, fr = fs[:, varying], fr[:, varying]
    mu, sd = fs.mean(axis=0), fs.std(axis=0)
    d = np.linalg.norm(((fr - mu) / sd)[:, None, :] - ((fs - mu) / sd)[None, :, :], axis=2)  # (Nf, Ns)
    nearest = np.argsort(d, axis=1)[:, : min(k, len(sim))].ravel()
    theta = randomization_matrix(sim, names)  # (Ns, P)
    matched = theta[nearest]
    floor = (
        0.1 * (theta.max(axis=0) - theta.min(axis=0)) + 1e-6
    )  # never narrower than 10% of the sampled span
    scale = np.maximum(matched.std(axis=0), floor)
    return PhysicalWeights(tuple(names), tuple(matched.mean(axis=0).tolist()), tuple(scale.tolist()),
                           len(failures) / len(real), "real failures (nearest sim episodes by outcome)")  # fmt: skip


def weights_from_posterior(names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                           strength: float) -> PhysicalWeights:  # fmt: skip
    """A bump on the system-identification posterior (where the real robot's physics was found)."""
    scale = [max(float(s), 1e-3 * max(abs(float(m)), 1.0)) for m, s in zip(mean, std)]
    return PhysicalWeights(tuple(names), tuple(float(m) for m in mean), tuple(scale), float(strength),
                           "sysid posterior")  # fmt: skip
