"""The instruments of bench/hostile_driver.py, without ROS: hostile joint states and command checks.

Kept apart from the rclpy client so that tests can run them on null cases (a safe stream has no violation,
an unsafe one is caught) without DDS.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.robot.safety.arm import KIND_WALK

TRANSPORT_S = 0.01  # DDS + scheduling allowance between the node's measurement and the command's receipt

# name -> what it sends; every kind here must be refused or, for the plausible ones ("old arm"), bounded
HOSTILE_KINDS = (
    "NaN", "inf", "-inf", "huge", "beyond limits", "zeros", "zeros unstamped", "jump", "random in limits",
    "old arm", "old stamp", "future stamp", "far future stamp", "negative stamp", "missing joint",
    "extra joint unnamed", "fewer positions", "repeated names", "unknown names", "empty", "too many joints",
    "one joint NaN", "one joint beyond limit", "jump one joint", "zeros future stamp", "huge unstamped",
)  # fmt: skip


def hostile_state(kind: str | None, q: np.ndarray, past: np.ndarray, names: list[str], limits: Any,
                  rng: np.random.Generator) -> tuple[str, list[str], np.ndarray, float]:  # fmt: skip
    """(kind, names, positions, stamp) of one hostile joint state; ``q``: the true arm, ``past``: 0.1 s ago."""
    import time

    kind = kind or str(rng.choice(HOSTILE_KINDS))
    now, n = time.time(), len(names)
    pos, stamp, out_names = q.copy(), now, list(names)
    j = int(rng.integers(n))
    if kind in ("NaN", "inf", "-inf"):
        pos[:] = {"NaN": math.nan, "inf": math.inf, "-inf": -math.inf}[kind]
    elif kind in ("huge", "huge unstamped"):
        pos[:] = 1e9
        stamp = 0.0 if kind == "huge unstamped" else now
    elif kind == "beyond limits":
        pos = np.where(rng.random(n) < 0.5, limits.upper + 0.5, limits.lower - 0.5)
    elif kind in ("zeros", "zeros unstamped", "zeros future stamp"):
        pos[:] = 0.0
        stamp = {"zeros": now, "zeros unstamped": 0.0, "zeros future stamp": now + 0.3}[kind]
    elif kind == "jump":
        pos = q + rng.choice([-0.5, 0.5], n)
    elif kind == "jump one joint":
        pos[j] += 0.5
    elif kind == "random in limits":
        pos = rng.uniform(limits.lower, limits.upper)
    elif kind == "old arm":
        pos = past.copy()
    elif kind in ("old stamp", "future stamp", "far future stamp", "negative stamp"):
        pos = rng.uniform(limits.lower, limits.upper)
        stamp = {"old stamp": now - 5.0, "future stamp": now + 0.4, "far future stamp": now + 3600.0,
                 "negative stamp": -1.0}[kind]  # fmt: skip
    elif kind == "missing joint":
        out_names, pos = out_names[:-1], pos[:-1]
    elif kind == "extra joint unnamed":
        pos = np.concatenate([pos, [0.0]])
    elif kind == "fewer positions":
        pos = pos[: n - 2]
    elif kind == "repeated names":
        out_names = out_names[:-1] + [out_names[0]]
    elif kind == "unknown names":
        out_names = [f"x_{name}" for name in out_names]
    elif kind == "empty":
        out_names, pos = [], np.zeros(0)
    elif kind == "too many joints":
        out_names, pos = [f"j{i}" for i in range(200)], np.zeros(200)
    elif kind == "one joint NaN":
        pos[j] = math.nan
    elif kind == "one joint beyond limit":
        pos[j] = limits.upper[j] + 1.0
    else:
        raise ValueError(f"hostile kind {kind!r} unknown; known: {HOSTILE_KINDS}")
    return kind, out_names, pos, stamp


class CommandLog:
    """Every command with its receipt time, the true arm then and why the node's safety module produced it;
    :meth:`violations` checks the bounds, each command against the one that applies to its kind."""

    def __init__(self, limits: Any) -> None:
        self.limits = limits
        self.times: list[float] = []  # receipt here (monotonic s)
        self.sent: list[float] = []  # the node's publication stamp (wall-clock s, the command's header)
        self.commands: list[np.ndarray] = []
        self.arm: list[np.ndarray] = []
        self.speeds: list[np.ndarray] = []  # (J,) rad/s: the true arm's velocity at the receipt (nan: unknown)
        self.kinds: list[str] = []  # the node's SafetyDecision.kind (its command-kind topic), "unknown" without

    def add(self, t: float, command: np.ndarray, arm: np.ndarray, sent: float = math.nan, kind: str = "unknown",
            speed: np.ndarray | None = None) -> None:  # fmt: skip
        self.times.append(t)
        self.sent.append(sent)
        self.commands.append(np.asarray(command, dtype=float))
        self.arm.append(np.asarray(arm, dtype=float))
        self.kinds.append(kind)
        self.speeds.append(np.full(len(self.commands[-1]), np.nan) if speed is None else np.asarray(speed, dtype=float))

    def label(self, kinds: dict[float, str]) -> None:
        """Each command's kind from the node's command-kind messages, matched by stamp (they travel on their own
        topic, so they may arrive before or after the command); "unknown" where none came."""
        self.kinds = [kinds.get(s, k) for s, k in zip(self.sent, self.kinds)]

    @property
    def lead_bound(self) -> np.ndarray:
        """(J,) rad: max_lead + how far the arm may move at the data-sheet speed while the measurement the
        node used ages (watchdog period) and the command travels (TRANSPORT_S)."""
        lim = self.limits
        return lim.max_lead + lim.max_velocity * (lim.stale_after_s + TRANSPORT_S)

    def periods_between(self) -> np.ndarray:
        """(N-1,) control periods between consecutive received commands, from the node's publication stamps (1
        where a stamp is missing). Why: a command dropped or delayed on the way (a loaded machine) makes the next
        one received two periods' motion after the last; diffing receipts alone read that as a 2x step (17
        "violations" at load 4-7, none at load 2)."""
        gaps = np.diff(np.asarray(self.sent, dtype=float)) / self.limits.period_s
        return np.where(np.isfinite(gaps), np.maximum(1.0, np.round(gaps)), 1.0)

    def step_bounds(self) -> np.ndarray:
        """(N-1, J) rad per control period: the step each command may take from the one before. max_step, except
        a walk-back (the node says so): :meth:`SafetyLimits.walk_steps` at the fastest the true arm moved at the
        last three receipts (the node walks at the speed it measured a few ms earlier), never the data sheet."""
        lim, n = self.limits, len(self.commands)
        bounds = np.tile(lim.max_step, (max(n - 1, 0), 1))
        speeds = np.nan_to_num(np.abs(np.array(self.speeds)), nan=0.0) if n else np.zeros((0, lim.n_joints))
        for i in range(1, n):
            if self.kinds[i] == KIND_WALK:
                fastest = speeds[max(0, i - 2) : i + 1].max(axis=0)
                bounds[i - 1] = lim.walk_steps(fastest)[1]
        return bounds

    def violations(self) -> dict[str, Any]:
        lim = self.limits
        if not self.commands:
            return {"commands": 0, "beyond_limits": 0, "beyond_step": 0, "beyond_lead": 0, "non_finite": 0,
                    "worst_step_rad": None, "worst_lead_rad": None, "lead_bound_rad": float(self.lead_bound.max()),
                    "beyond_step_by_kind": {}, "commands_by_kind": {}, "walk_beyond_data_sheet": 0}  # fmt: skip
        cmds, arm = np.array(self.commands), np.array(self.arm)  # (N, J)
        finite = np.all(np.isfinite(cmds), axis=1)
        inside = np.all((cmds >= lim.lower - 1e-9) & (cmds <= lim.upper + 1e-9), axis=1)
        steps = np.abs(np.diff(cmds, axis=0)) / self.periods_between()[:, None]  # (N-1, J) per control period
        beyond = np.any(steps > self.step_bounds() + 1e-9, axis=1)
        sheet = np.any(steps > lim.max_velocity * lim.period_s + 1e-9, axis=1)
        lead = np.abs(cmds - arm)
        kinds = self.kinds[1:]
        return {
            "commands": len(cmds),
            "non_finite": int((~finite).sum()),
            "beyond_limits": int((~inside).sum()),
            "beyond_step": int(beyond.sum()),
            "beyond_lead": int(np.any(lead > self.lead_bound + 1e-9, axis=1).sum()),
            "walk_beyond_data_sheet": int(sum(1 for k, s in zip(kinds, sheet) if s and k == KIND_WALK)),
            "worst_step_rad": float(steps.max()) if len(steps) else 0.0,
            "worst_step_per_limit": float((steps / lim.max_step).max()) if len(steps) else 0.0,
            "worst_lead_rad": float(lead.max()),
            "lead_bound_rad": float(self.lead_bound.max()),
            "commands_by_kind": dict(sorted(Counter(self.kinds).items())),
            "beyond_step_by_kind": dict(sorted(Counter(k for k, b in zip(kinds, beyond) if b).items())),
        }

    def step_details(self, limit: int = 40) -> list[dict[str, Any]]:
        """Up to ``limit`` commands beyond their step bound: kind (and the previous command's), the worst joint's
        step as a multiple of max_step and of its bound, the true arm's speed on that joint (rad/s and as a share
        of the allowed speed) and how far the previous command led the arm (rad)."""
        lim = self.limits
        if len(self.commands) < 2:
            return []
        cmds, arm = np.array(self.commands), np.array(self.arm)
        steps = np.abs(np.diff(cmds, axis=0)) / self.periods_between()[:, None]
        ratio = steps / self.step_bounds()
        speeds, allowed = np.array(self.speeds), lim.max_step / lim.period_s
        out = []
        for i in np.flatnonzero(np.any(ratio > 1 + 1e-9, axis=1))[:limit]:
            j, k = int(np.argmax(ratio[i])), int(i) + 1
            out.append({"index": k, "kind": self.kinds[k], "previous kind": self.kinds[k - 1], "joint": j,
                        "step / max_step": round(float(steps[i, j] / lim.max_step[j]), 3),
                        "step / its bound": round(float(ratio[i, j]), 3),
                        "arm speed (rad/s)": round(float(speeds[k, j]), 4),
                        "arm speed / allowed": round(float(speeds[k, j] / allowed[j]), 3),
                        "previous command's lead (rad)": round(float(cmds[k - 1, j] - arm[k - 1, j]), 4),
                        "command - arm (rad)": round(float(cmds[k, j] - arm[k, j]), 4)})  # fmt: skip
        return out


def constant_from(commands: np.ndarray) -> int:
    """Index of the first command from which all later ones equal the last (0 for a constant run)."""
    last = commands[-1]
    same = np.all(commands == last, axis=1)
    changed = np.flatnonzero(~same)
    return int(changed[-1] + 1) if len(changed) else 0


def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return math.nan


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
