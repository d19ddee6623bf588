"""Summaries of a bench/node_probe.py recording: tick phases, and each stop's delay split into its parts.

    python bench/node_probe_report.py PROBE.npz [--dump HOSTILE_DUMP.npz] [--json OUT.json]

Tick phases (us, wall time, so they include the time the node's thread waited for a core or the GIL): the whole
tick, joint states taken, the rest before the session's tick (rejection summary), the session's tick (policy ->
safety -> episode bookkeeping), the command's publication, the command-kind publication, and what is left; the
tick's start lateness against its 8 ms grid; gc passes inside ticks. Stops (an e-stop or a non-normal safety mode
that begins a hold): DDS received -> callback entry (the node's queue: what the executor ran meanwhile), entry ->
the hold's stamp (the callback; also entry -> the publish call: 24f8b75 stamped the command after building it, main
before), and with the bench's --dump: the bench's decision -> the DDS source stamp (the stopping side's own delay)
and source -> received (transport). The parts add up to the bench's hold delay (decision -> the hold's stamp).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.node_probe import CODE  # noqa: E402

PERIOD_NS = 8_000_000  # the UR5e node's 125 Hz tick


def load(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path) as z:
        return z["events"], json.loads(str(z["meta"]))


def stats_us(values: Any) -> dict[str, float] | None:
    v = np.asarray(values, dtype=float) / 1e3
    if not len(v):
        return None
    q = np.percentile(v, [50, 90, 99])
    return {"n": len(v), "mean": round(float(v.mean()), 1), "p50": round(float(q[0]), 1),
            "p90": round(float(q[1]), 1), "p99": round(float(q[2]), 1), "max": round(float(v.max()), 1)}  # fmt: skip


def _times(ev: np.ndarray, code: str) -> np.ndarray:
    return ev[ev[:, 1] == CODE[code], 0]


def tick_phases(ev: np.ndarray) -> dict[str, Any]:
    """Per tick: the duration of each phase (ns), from the marks between its 'tick in' and 'tick out'."""
    ins, outs = _times(ev, "tick in"), _times(ev, "tick out")
    n = min(len(ins), len(outs))
    ins, outs = ins[:n], outs[:n]
    spans = {name: _spans(ev, name, ins, outs) for name in ("take", "session tick", "command publish", "kind publish", "gc")}
    ok = ~np.isnan(spans["take"][0]) & ~np.isnan(spans["session tick"][0])
    take, sess = spans["take"], spans["session tick"]
    rows = {"tick": outs - ins, "take": take[1] - take[0], "before session": sess[0] - take[1],
            "session tick": sess[1] - sess[0]}  # fmt: skip
    parts = (take[1] - ins) + (sess[1] - take[1])
    for name in ("command publish", "kind publish"):
        d = spans[name][1] - spans[name][0]
        rows[name] = d
        parts = parts + np.nan_to_num(d)
    rows["gc in tick"] = np.nan_to_num(spans["gc"][1] - spans["gc"][0])
    rows["rest"] = outs - ins - parts
    rows = {k: v[ok & ~np.isnan(v)] for k, v in rows.items()}
    cpu_in, cpu_out = ev[ev[:, 1] == CODE["tick in"], 2:4][:n], ev[ev[:, 1] == CODE["tick out"], 2:4][:n]
    if n and cpu_in[:, 0].any():  # the node's thread CPU per tick; the process's per period (all its threads)
        rows["tick CPU (executor thread)"] = (cpu_out[:, 0] - cpu_in[:, 0]).astype(float)
        rows["process CPU per period"] = np.diff(cpu_in[:, 1]).astype(float)
    late = (ins - ins[0]) % PERIOD_NS if n else np.zeros(0)
    return {"phases_us": {k: stats_us(v) for k, v in rows.items()},
            "tick start jitter vs the first tick's grid (us)": stats_us(np.minimum(late, PERIOD_NS - late)),
            "ticks": n}  # fmt: skip


def _spans(ev: np.ndarray, name: str, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per interval [lo, hi]: the first '<name> in' (gc: 'start') and the last '<name> out' ('stop') inside it,
    as float ns (nan where there is none)."""
    a, b = ("gc start", "gc stop") if name == "gc" else (f"{name} in", f"{name} out")
    t_in, t_out = _times(ev, a), _times(ev, b)
    i = np.searchsorted(t_in, lo)
    j = np.searchsorted(t_out, hi, side="right") - 1
    first = np.where(i < len(t_in), t_in[np.minimum(i, len(t_in) - 1)] if len(t_in) else 0, np.inf)
    last = np.where(j >= 0, t_out[np.maximum(j, 0)] if len(t_out) else 0, -np.inf)
    inside = (first <= hi) & (last >= lo) & (first <= last)
    return np.where(inside, first, np.nan).astype(float), np.where(inside, last, np.nan).astype(float)


def stops(ev: np.ndarray) -> list[dict[str, Any]]:
    """Each stop callback that published a hold: DDS stamps, entry, the hold's publication and what ran before."""
    out = []
    for name in ("estop", "mode"):
        sel = np.flatnonzero(ev[:, 1] == CODE[f"{name} in"])
        for i in sel:
            t_in, source, received = (int(x) for x in ev[i, [0, 2, 3]])
            after = ev[i + 1 :]
            end = after[after[:, 1] == CODE[f"{name} out"]]
            if not len(end):
                continue
            t_out = int(end[0, 0])
            pubs = after[(after[:, 1] == CODE["command publish in"]) & (after[:, 0] <= t_out)]
            if not len(pubs):
                continue  # a release or a repeat: no hold published
            busy = _busy_at(ev[:i], received)
            out.append({"kind": "e-stop" if name == "estop" else "protective stop", "source_ns": source,
                        "received_ns": received, "entry_ns": t_in, "hold_stamp_ns": int(pubs[0, 2]),
                        "queue_us": (t_in - received) / 1e3, "callback_us": (int(pubs[0, 2]) - t_in) / 1e3,
                        "to_publish_us": (int(pubs[0, 0]) - t_in) / 1e3,  # entry -> the publish call (the stamp may
                        # be taken before the message is built, or after: the code's choice)
                        "busy_at_receipt": busy})  # fmt: skip
    return sorted(out, key=lambda s: s["entry_ns"])


def _busy_at(before: np.ndarray, t: int) -> str:
    """What the executor thread was in at ``t`` (the last callback entered before t, if not yet left)."""
    names = ("tick", "service", "goal", "estop", "mode")
    last, last_t = "idle", -1
    for name in names:
        ins = before[(before[:, 1] == CODE[f"{name} in"]) & (before[:, 0] <= t), 0]
        outs = before[(before[:, 1] == CODE[f"{name} out"]) & (before[:, 0] <= t), 0]
        if len(ins) and (not len(outs) or outs[-1] < ins[-1]) and ins[-1] > last_t:
            last, last_t = name, int(ins[-1])
    return last


def join_bench(node_stops: list[dict], dump: Path) -> list[dict[str, Any]]:
    """Each bench stop (bench/hostile_driver.py --dump) with its node callback: the hold delay in parts (us)."""
    from bench.hostile_checks import constant_from

    with np.load(dump) as z:
        sent, times, cmds, bench_stops = z["sent"], z["times"], z["commands"], z["stops"]
    sources = np.array([s["source_ns"] for s in node_stops], dtype=np.int64)
    rows = []
    for t, wall, release, estop, *rest in bench_stops:
        sel = (times >= t) & (times < release)
        if sel.sum() < 2:
            continue
        delay = float(sent[sel][constant_from(cmds[sel])] - wall)
        wall_ns = int(round(wall * 1e9))
        # this stop's own message: DDS stamps its source inside the publish call (published: after it returned)
        last_ns = int(round(rest[0] * 1e9)) + 1_000_000 if rest else int(round((wall + release - t) * 1e9))
        k = np.flatnonzero((sources >= wall_ns - 1_000_000) & (sources <= last_ns))
        row = {"kind": "e-stop" if estop else "protective stop", "bench hold delay (us)": round(delay * 1e6, 1)}
        if rest:
            row["bench publish call (us)"] = round((rest[0] - wall) * 1e6, 1)
        if len(k):
            s = node_stops[int(k[0])]
            row |= {"bench -> DDS source (us)": (s["source_ns"] - wall_ns) / 1e3,
                    "transport (us)": (s["received_ns"] - s["source_ns"]) / 1e3, "node queue (us)": s["queue_us"],
                    "node callback (us)": s["callback_us"], "node callback to the publish call (us)": s["to_publish_us"],
                    "node busy at receipt": s["busy_at_receipt"],
                    "hold from the callback": abs((s["hold_stamp_ns"] - wall_ns) / 1e3 - delay * 1e6) < 1.0}  # fmt: skip
        rows.append(row)
    return rows


def summarize(probe: Path, dump: Path | None) -> dict[str, Any]:
    ev, meta = load(probe)
    node_stops = stops(ev)
    out: dict[str, Any] = {"meta": meta, **tick_phases(ev)}
    out["stop callbacks (us)"] = {k: stats_us([1e3 * s[k] for s in node_stops])
                                  for k in ("queue_us", "callback_us", "to_publish_us")}  # fmt: skip
    out["busy at a stop's receipt"] = {b: sum(s["busy_at_receipt"] == b for s in node_stops)
                                       for b in sorted({s["busy_at_receipt"] for s in node_stops})}  # fmt: skip
    if dump is not None:
        rows = join_bench(node_stops, dump)
        out["stops"] = rows
        parts = ("bench hold delay (us)", "bench publish call (us)", "bench -> DDS source (us)", "transport (us)",
                 "node queue (us)", "node callback (us)", "node callback to the publish call (us)")  # fmt: skip
        out["stop parts (us)"] = {p: stats_us([1e3 * r[p] for r in rows if p in r]) for p in parts}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("probe", type=Path)
    parser.add_argument("--dump", type=Path, default=None, help="bench/hostile_driver.py --dump of the same run")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args(argv)
    out = summarize(args.probe, args.dump)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    brief = {k: v for k, v in out.items() if k != "stops"}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
