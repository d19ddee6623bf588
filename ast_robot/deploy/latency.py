"""Control-loop timing: joint-state receipt -> command publication latency and missed cycles."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

# The newest samples kept: 2^16 ticks = 8.7 min at 125 Hz, 2.2 min at 500 Hz. A node that runs for days
# would otherwise grow two lists by 125-500 floats a second.
MAX_SAMPLES = 1 << 16


def _ring() -> deque[float]:
    return deque(maxlen=MAX_SAMPLES)


@dataclass
class LatencyStats:
    """Per published command: latency (s) from the receipt of the joint state it used, tick start times.

    Bounded ring buffers: :meth:`summary` describes the newest :data:`MAX_SAMPLES` ticks."""

    latencies: deque[float] = field(default_factory=_ring)
    tick_starts: deque[float] = field(default_factory=_ring)

    def record(self, tick_start_s: float, state_receipt_s: float, publish_s: float) -> None:
        self.tick_starts.append(tick_start_s)
        self.latencies.append(publish_s - state_receipt_s)

    def reset(self) -> None:
        self.latencies.clear()
        self.tick_starts.clear()

    def summary(self, period_s: float) -> dict[str, float]:
        """p50/p99/max latency (ms), ticks, missed cycles (tick gaps > 1.5 periods) and the achieved rate."""
        lat = np.array(self.latencies) * 1e3
        starts = np.array(self.tick_starts)
        gaps = np.diff(starts)
        missed = int(np.sum(np.maximum(np.round(gaps / period_s) - 1, 0))) if gaps.size else 0
        span = starts[-1] - starts[0] if starts.size > 1 else 0.0
        return {"ticks": int(lat.size),
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
                "latency_max_ms": float(lat.max()) if lat.size else float("nan"),
                "missed_cycles": missed,
                "late_ticks": int(np.sum(gaps > 1.5 * period_s)) if gaps.size else 0,
                "achieved_hz": float((starts.size - 1) / span) if span > 0 else float("nan")}  # fmt: skip
