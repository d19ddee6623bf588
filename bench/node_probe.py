"""A timing probe for the policy node, outside its code: `ast-robot ARGS` with the node's callbacks wrapped.

Runs `ast-robot ARGS` (e.g. `deploy scripted:reach --robot ur5e`) with the policy node's callbacks wrapped, and
writes at exit, to OUT (.npz), every wrapped call's entry and exit: the control tick and its phases (joint states
taken, the session's tick, the command's publication, the command-kind publication where the node has one), the
e-stop and safety-mode callbacks (with the message's DDS source and reception stamps), the services, the goal
callback and the garbage collector's passes. Times are time.time_ns(): the clock DDS stamps messages with. A stop's
delay then splits into: the stopping side's own delay (its decision -> the DDS source stamp), transport (source ->
received), the node's queue (received -> callback entry: what the executor was doing meanwhile) and the callback
(entry -> the hold's publication).

The node's code is not touched: the same wrappers fit any commit (issue 21: 24f8b75 against main), so both pay the
same for the probe (about a microsecond per event). Nothing runs it unless asked (bench/hostile_driver.py
--node-probe).

    python bench/node_probe.py OUT.npz deploy scripted:reach --robot ur5e
    python bench/node_probe.py --report OUT.npz [--dump hostile_dump.npz]   # a summary (bench/node_probe_report.py)
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

# event code -> name; an event is (time_ns, code, a, b) with a, b as the EVENT_ARGS say
EVENTS = (
    "tick in", "tick out", "take in", "take out", "session tick in", "session tick out", "command publish in",
    "command publish out", "kind publish in", "kind publish out", "estop in", "estop out", "mode in", "mode out",
    "service in", "service out", "goal in", "goal out", "gc start", "gc stop",
)  # fmt: skip
CODE = {name: k for k, name in enumerate(EVENTS)}
EVENT_ARGS = {"tick in": ("thread CPU ns", "process CPU ns"), "tick out": ("thread CPU ns", "process CPU ns"),
              "command publish in": ("header stamp ns", "-"), "estop in": ("DDS source stamp ns", "received ns"),
              "mode in": ("DDS source stamp ns", "received ns"), "estop out": ("data", "-"), "mode out": ("data", "-"),
              "gc start": ("generation", "-")}  # fmt: skip


class Recorder:
    """Events in memory (list appends: no I/O on the node's path), written once at exit."""

    def __init__(self, path: Path) -> None:
        self.path, self.events, self.meta = path, [], {}

    def mark(self, name: str, a: int = 0, b: int = 0) -> None:
        self.events.append((time.time_ns(), CODE[name], a, b))

    def span(self, fn: Any, name: str, cpu: bool = False) -> Any:
        """``fn`` with ``<name> in`` / ``<name> out`` around each call (keeps the signature rclpy inspects); with
        ``cpu`` each mark also carries this thread's and the process's CPU time (ns): what the call cost the
        node, apart from the time it waited for a core."""

        def cpu_now() -> tuple[int, int]:
            return (time.thread_time_ns(), time.process_time_ns()) if cpu else (0, 0)

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.mark(f"{name} in", *cpu_now())
            try:
                return fn(*args, **kwargs)
            finally:
                self.mark(f"{name} out", *cpu_now())

        return wrapped

    def write(self) -> None:
        events = np.array(self.events, dtype=np.int64).reshape(-1, 4)
        np.savez(self.path, events=events, names=np.array(EVENTS), meta=np.array(json.dumps(self.meta)))


def _stamp_ns(msg: Any) -> int:
    header = getattr(msg, "header", None)
    return 0 if header is None else header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def install(rec: Recorder) -> None:
    """Wrap the policy node's callbacks (class attributes, before any node exists) and the gc."""
    import ast_robot_ros.policy_node as pn

    import ast_robot
    from ast_robot.deploy import session

    node_cls, session_cls = pn.PolicyNode, session.DeploymentSession
    rec.meta = {"ast_robot": ast_robot.__file__, "policy_node": pn.__file__, "argv": sys.argv[2:],
                "kind publisher": "pub_kind" in Path(pn.__file__).read_text()}  # fmt: skip
    node_cls._tick = rec.span(node_cls._tick, "tick", cpu=True)
    node_cls._take_joint_states = rec.span(node_cls._take_joint_states, "take")
    session_cls.tick = rec.span(session_cls.tick, "session tick")
    node_cls._on_start = rec.span(node_cls._on_start, "service")
    node_cls._on_stop = rec.span(node_cls._on_stop, "service")
    node_cls._on_goal = rec.span(node_cls._on_goal, "goal")
    for attr, name in (("_on_estop", "estop"), ("_on_safety_mode", "mode")):
        setattr(node_cls, attr, _with_info(rec, getattr(node_cls, attr), name))
    configure = node_cls.on_configure

    def on_configure(self: Any, state: Any) -> Any:
        result = configure(self, state)
        _wrap_publisher(rec, getattr(self, "pub_cmd", None), "command publish", stamp=True)
        _wrap_publisher(rec, getattr(self, "pub_kind", None), "kind publish")
        return result

    node_cls.on_configure = on_configure
    gc.callbacks.append(lambda phase, info: rec.mark(f"gc {phase}", info.get("generation", -1)))


def _with_info(rec: Recorder, fn: Any, name: str) -> Any:
    """A stop callback that also takes the DDS message info (rclpy passes it to a two-argument callback)."""

    def wrapped(self: Any, source: str, msg: Any, info: Any) -> None:
        rec.mark(f"{name} in", int(info["source_timestamp"]), int(info["received_timestamp"]))
        try:
            fn(self, source, msg)
        finally:
            rec.mark(f"{name} out", int(msg.data))

    return wrapped


def _wrap_publisher(rec: Recorder, pub: Any, name: str, stamp: bool = False) -> None:
    if pub is None:
        return
    publish = pub.publish

    def wrapped(msg: Any) -> None:
        rec.mark(f"{name} in", _stamp_ns(msg) if stamp else 0)
        publish(msg)
        rec.mark(f"{name} out")

    pub.publish = wrapped


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--report":
        from bench.node_probe_report import main as report

        return report(argv[1:])
    if len(argv) < 2:
        print("usage: node_probe.py OUT.npz AST_ROBOT_ARGS... | --report OUT.npz [--dump DUMP.npz]", file=sys.stderr)
        return 2
    rec = Recorder(Path(argv[0]))
    install(rec)
    atexit.register(rec.write)
    rec.meta["thread"] = threading.get_ident()
    from ast_robot.cli import main as cli

    return cli(argv[1:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:  # only the report imports this tree: the node's code comes from PYTHONPATH
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    elif sys.path[0] == str(Path(__file__).resolve().parent):  # bench/'s modules must not shadow the node's imports
        sys.path.pop(0)
    sys.exit(main(sys.argv[1:]))
