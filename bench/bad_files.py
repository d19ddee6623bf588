"""Bad and malicious files through the real CLI (issue 19, deliverables 3 and 4).

Runs every case of the table in ``tests/cli/test_bad_files.py`` (each file kind broken as files break:
empty, truncated, random bytes, wrong keys, NaN, another env, a pickle or ``!!python`` payload) plus a SAC
zip whose ``:serialized:`` entry carries a payload, and checks the payloads on the null case: each must run
when its file is loaded the unsafe way. Writes `bench/results/bad_files.json` (+ .md).

    .venv/bin/python bench/bad_files.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.pop("AST_ROBOT_DEBUG", None)

from bench.common import goal, write_results  # noqa: E402

PAYLOAD_WORDS = ("payload", "python tag")


def kind_of(case: str) -> str:
    return case.split(" ")[0]


def unsafe_loads(t, world) -> list[tuple[str, bool]]:
    """(loader, payload ran) when each payload kind is loaded the unsafe way: the instrument's null case."""
    import numpy as np
    import torch
    import yaml
    from stable_baselines3 import SAC

    out = []
    t.sac_data_with_payload(world)
    with contextlib.suppress(ValueError):  # it fails only after the payload ran
        SAC.load(world.sac / "sac.zip", device="cpu", custom_objects={"replay_buffer_class": None})
    out.append(("SB3 SAC.load of a :serialized: entry", world.marker.exists()))
    loads = {"torch.load(weights_only=False)": lambda: torch.load(t._saved(world, {"x": t.Payload(world.marker)}),
                                                                  weights_only=False),
             "np.load(allow_pickle=True)": lambda: np.load(t._npz(world), allow_pickle=True)["a"],
             "yaml.unsafe_load of a !!python tag": lambda: yaml.unsafe_load(
                 f"x: !!python/object/apply:os.system ['touch {world.marker}']")}  # fmt: skip
    for name, load in loads.items():
        world.marker.unlink(missing_ok=True)
        load()
        out.append((name, world.marker.exists()))
    return out


def main() -> None:
    import torch

    import tests.cli.test_bad_files as t
    from ast_robot.cli import main as cli

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bad_files_"))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        (tmp / "src").mkdir()
        src = t.build_world(tmp / "src")
    rows = []
    for i, case in enumerate(t.CASES):
        row = t.run_case(t.copy_world(src, tmp / f"case{i}"), case)
        rows.append({"kind": kind_of(case), "malicious": any(w in case for w in PAYLOAD_WORDS), **row})
    world = t.copy_world(src, tmp / "sac_serialized")
    t.sac_data_with_payload(world)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli(t.eval_sac(world))
    rows.append({"kind": "sac.zip", "malicious": True, "case": "sac.zip :serialized: payload (eval must work)",
                 "exit": code, "payload_ran": world.marker.exists()})  # fmt: skip
    null = unsafe_loads(t, t.copy_world(src, tmp / "null"))
    bad = [r for r in rows if "line" in r]
    clear = [r for r in bad if r["exit"] != 0 and r["stderr_lines"] == 1 and r["names_file"] and not r["traceback"]
             and not r["unsafe_hint"]]  # fmt: skip
    malicious = [r for r in rows if r["malicious"]]
    goals = [goal("malicious fixtures: payloads executed", 0, sum(r["payload_ran"] for r in rows), "<="),
             goal("bad-file cases: one line naming the file, exit != 0, no traceback (fraction)", 1.0,
                  len(clear) / len(bad)),
             goal("null case: payloads that run under the unsafe loaders (fraction)", 1.0,
                  sum(ran for _, ran in null) / len(null))]  # fmt: skip
    notes = (f"{len(bad)} bad-file cases over {len({r['kind'] for r in bad})} file kinds, {len(malicious)} of them "
             f"malicious; the SAC :serialized: payload case must evaluate normally (exit {code}). Null case: "
             + "; ".join(f"{name}: ran={ran}" for name, ran in null))  # fmt: skip
    path = write_results("bad_files", rows, goals, notes)
    print(f"wrote {path}")
    for g in goals:
        print(g)


if __name__ == "__main__":
    main()
