"""The node probe (bench/node_probe.py) and its report on null cases: a tick made only of its named phases leaves
nothing unexplained, a stop's parts add up to the bench's hold delay, no stop gives no stop row, and the wrappers
keep the signatures rclpy inspects (a two-argument stop callback gets the DDS message info)."""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest

from bench.node_probe import CODE, Recorder, _with_info
from bench.node_probe_report import join_bench, stops, tick_phases

MS = 1_000_000


def event(t_ns: int, name: str, a: int = 0, b: int = 0) -> tuple[int, int, int, int]:
    return (t_ns, CODE[name], a, b)


def ticks(n: int, cpu: bool = True) -> list[tuple[int, int, int, int]]:
    """``n`` ticks 8 ms apart of exactly: take 0.4 ms, session 0.3 ms, command 0.2 ms, kind 0.05 ms."""
    ev = []
    for k in range(n):
        t = 1_000 * MS + k * 8 * MS
        ev += [event(t, "tick in", k * MS if cpu else 0, 2 * k * MS if cpu else 0), event(t, "take in"),
               event(t + 400_000, "take out"), event(t + 400_000, "session tick in"),
               event(t + 700_000, "session tick out"), event(t + 700_000, "command publish in", t + 700_000),
               event(t + 900_000, "command publish out"), event(t + 900_000, "kind publish in"),
               event(t + 950_000, "kind publish out"), event(t + 950_000, "tick out", k * MS + 600_000 if cpu else 0)]
    return ev


def test_a_tick_of_named_phases_leaves_no_rest_and_no_stop():
    ev = np.array(ticks(50), dtype=np.int64)
    out = tick_phases(ev)
    p = out["phases_us"]
    assert out["ticks"] == 50
    assert p["tick"]["max"] == pytest.approx(950.0) and p["take"]["p50"] == pytest.approx(400.0)
    assert p["session tick"]["p50"] == pytest.approx(300.0) and p["command publish"]["p50"] == pytest.approx(200.0)
    assert p["kind publish"]["p50"] == pytest.approx(50.0)
    assert p["rest"]["max"] == pytest.approx(0.0) and p["before session"]["max"] == pytest.approx(0.0)
    assert p["gc in tick"]["max"] == 0.0
    assert p["tick CPU (executor thread)"]["p50"] == pytest.approx(600.0)
    assert p["process CPU per period"]["p50"] == pytest.approx(2000.0)
    assert out["tick start jitter vs the first tick's grid (us)"]["max"] == 0.0  # on the grid
    assert stops(ev) == []


def test_a_node_without_kind_publisher_or_cpu_marks_reports_none_for_them():
    ev = np.array([e for e in ticks(10, cpu=False) if not CODE["kind publish in"] <= e[1] <= CODE["kind publish out"]])
    p = tick_phases(ev)["phases_us"]
    assert p["kind publish"] is None and "tick CPU (executor thread)" not in p
    assert p["rest"]["max"] == pytest.approx(50.0)  # what the kind publication took above is now unexplained


def test_a_stops_parts_add_up_to_the_bench_hold_delay(tmp_path):
    wall_ns = 2_000 * MS  # the bench decided to stop here (wall clock)
    source, received, entry, hold = wall_ns + 20_000, wall_ns + 70_000, wall_ns + 3 * MS, wall_ns + 3 * MS + 150_000
    ev = [event(wall_ns - MS, "tick in"), event(wall_ns + MS, "tick out"),  # busy in a tick when it arrived
          event(entry, "estop in", source, received), event(hold, "command publish in", hold),
          event(hold + 10_000, "command publish out"), event(hold + 20_000, "estop out", 1)]
    node_stops = stops(np.array(ev, dtype=np.int64))
    assert len(node_stops) == 1 and node_stops[0]["busy_at_receipt"] == "tick"
    t0 = 100.0  # the bench's monotonic clock at the stop
    sent = np.array([wall_ns / 1e9 - 0.004, hold / 1e9, hold / 1e9 + 0.008])  # moving, then the hold twice
    cmds = np.array([[0.0], [1.0], [1.0]])
    np.savez(tmp_path / "dump.npz", sent=sent, times=np.array([t0 + 0.001, t0 + 0.004, t0 + 0.012]), commands=cmds,
             stops=np.array([[t0, wall_ns / 1e9, t0 + 0.3, 1.0, wall_ns / 1e9 + 30e-6]]))  # fmt: skip
    (row,) = join_bench(node_stops, tmp_path / "dump.npz")
    parts = ("bench -> DDS source (us)", "transport (us)", "node queue (us)", "node callback (us)")
    assert [row[p] for p in parts] == pytest.approx([20.0, 50.0, 2930.0, 150.0])
    assert sum(row[p] for p in parts) == pytest.approx(row["bench hold delay (us)"], abs=0.2)
    assert row["hold from the callback"] and row["bench publish call (us)"] == pytest.approx(30.0, abs=0.1)


def test_the_wrappers_keep_what_rclpy_inspects(tmp_path):
    rec = Recorder(tmp_path / "probe.npz")
    calls = []

    class Node:
        def _on_estop(self, source, msg):
            calls.append((source, msg.data))

        def _tick(self):
            calls.append("tick")

    Node._on_estop = _with_info(rec, Node._on_estop, "estop")
    Node._tick = rec.span(Node._tick, "tick", cpu=True)
    node = Node()
    callback = functools.partial(node._on_estop, "live")  # as the node subscribes it
    with pytest.raises(TypeError):
        inspect.signature(callback).bind(object())  # so rclpy passes (msg, info) ...
    inspect.signature(callback).bind(object(), object())
    inspect.signature(node._tick).bind()  # ... and calls the timer's callback without a TimerInfo

    class Msg:
        data = True

    callback(Msg(), {"source_timestamp": 5, "received_timestamp": 7})
    node._tick()
    assert calls == [("live", True), "tick"]
    rec.write()
    with np.load(tmp_path / "probe.npz") as z:
        ev = z["events"]
    assert [int(c) for c in ev[:, 1]] == [CODE[n] for n in ("estop in", "estop out", "tick in", "tick out")]
    assert tuple(ev[0, 2:]) == (5, 7) and ev[1, 2] == 1 and ev[3, 2] >= ev[2, 2] > 0  # stamps, data, thread CPU
