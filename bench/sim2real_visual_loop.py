"""The pixel student's loop on a camera/lighting twin (issue 21, visual side): results of `ast-robot sim2real` runs.

The loops are run by the command in bench/results/sim2real_colour_rounds/README.md (`--start-policy` the UR5e pixel
student, `--demo-pool` its training pool, `--scenes-pool` its scenes file); each takes 15-60 min on the shared
2-core machine, so this script reads their folders rather than running them: per round the sim evaluation
(eval/summary.json), the gap report (gap/gap.json: success, culprits, retuned ranges, visual fit) and, where the
loop was started by /tmp/s10/loopft/loop.sh-style wrappers, its wall time, load and peak RSS (start.txt, end.txt,
time.txt of `/usr/bin/time -v`). Writes bench/results/<name>.json + .md with the issue's goals computed here.

    python bench/sim2real_visual_loop.py --name NAME --loop LABEL SEED TWIN.yaml LOOP_DIR [--loop ...] \
        [--null LABEL SEED LOOP_DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

TRUTH = {"colour_shift": "colour_shift", "light_scale": "light_intensity", "camera_offset_m": "camera_pose",
         "camera_rotation_deg": "camera_pose", "wrist_camera_offset_m": "wrist_pose",
         "wrist_camera_rotation_deg": "wrist_pose"}  # twin field -> the visual culprit the analyzer names  # fmt: skip
OPEN_REAL, OPEN_SIM, CLOSED_REAL, ROUNDS = 0.5, 0.8, 0.8, 3  # the thresholds


def round_row(folder: Path) -> dict:
    """One round folder: sim success and its CI, real success, gap CI, culprits, what was retuned."""
    sim = json.loads((folder / "eval" / "summary.json").read_text())
    rep = json.loads((folder / "gap" / "gap.json").read_text())
    s = rep["success"]
    visual = rep.get("visual") or {}
    return {"round": int(folder.name.removeprefix("round")), "sim": round(sim["success_rate"], 3),
            "sim_ci": [round(sim["ci_low"], 3), round(sim["ci_high"], 3)], "sim_n": sim["episodes"],
            "real": round(s["real"]["value"], 3), "real_n": s["n_real"],
            "gap_ci": [round(s["gap"]["low"], 3), round(s["gap"]["high"], 3)],
            "culprits": list(rep.get("culprits") or []), "retuned": rep.get("retuned") or {},
            "visual_fit": visual.get("fitted"), "camera_rms": visual.get("rms_nominal")}  # fmt: skip


def run_info(loop_dir: Path) -> dict:
    """Wall time, load and the loop process's peak RSS where the wrapper recorded them."""
    info: dict = {}
    for name in ("start", "end"):
        path = loop_dir / f"{name}.txt"
        if path.exists():
            text = path.read_text()
            info[f"{name}_utc"] = text.splitlines()[0]
            load = re.search(r"load average: ([\d.]+)", text)
            info[f"load_{name}"] = float(load.group(1)) if load else None
    time_txt = loop_dir / "time.txt"
    if time_txt.exists():
        text = time_txt.read_text()
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
        info["peak_rss_gb"] = round(int(rss.group(1)) / 1024**2, 2) if rss else None
        info["wall"] = wall.group(1) if wall else None
    return info


def loop_row(label: str, seed: int, twin: str | None, loop_dir: Path) -> dict:
    rounds = sorted(loop_dir.glob("*/round[0-9]*"), key=lambda p: int(p.name.removeprefix("round")))
    rows = [round_row(r) for r in rounds if (r / "gap" / "gap.json").exists()]
    hidden = {}
    if twin:
        import yaml

        hidden = yaml.safe_load(Path(twin).read_text()) or {}
    truth = sorted({TRUTH[k] for k in hidden if k in TRUTH})
    return {"kind": "visual_twin" if hidden else "nominal", "twin": label, "hidden": hidden, "seed": seed,
            "truth": truth, "rounds": rows, **run_info(loop_dir), "folder": str(loop_dir)}  # fmt: skip


def goals(rows: list[dict]) -> list[dict]:
    twins = [r for r in rows if r["kind"] == "visual_twin" and r["rounds"]]
    opened = [r for r in twins if r["rounds"][0]["real"] <= OPEN_REAL and r["rounds"][0]["sim"] >= OPEN_SIM]
    first = [bool(r["rounds"][0]["culprits"]) and r["rounds"][0]["culprits"][0] in r["truth"] for r in twins]
    closed = [any(x["real"] >= CLOSED_REAL for x in r["rounds"][1: ROUNDS + 1]) for r in opened]
    null = [r for r in rows if r["kind"] == "nominal" and r["rounds"]]
    quiet = [all(not x["culprits"] for x in r["rounds"]) for r in null]
    inside = [all(x["sim_ci"][0] - 1e-9 <= x["real"] <= x["sim_ci"][1] + 1e-9 for x in r["rounds"]) for r in null]
    peak = [r["peak_rss_gb"] for r in rows if r.get("peak_rss_gb") is not None]
    frac = lambda xs: None if not xs else round(sum(xs) / len(xs), 3)  # noqa: E731
    return [goal("camera/lighting twin: seeds of the loop measured", 2, len({r["seed"] for r in twins})),
            goal("round-0 real <= 50% where sim >= 80% (fraction of loop trials)", 1.0,
                 frac([r in opened for r in twins])),
            goal("true culprit named first in round 0 (fraction of trials)", 0.9, frac(first)),
            goal("real >= 80% within 3 fine-tune rounds (fraction of opened trials)", 1.0, frac(closed)),
            goal("opened trials that ran all 3 fine-tune rounds or closed earlier (fraction)", 1.0,
                 frac([len(r["rounds"]) > ROUNDS or c for r, c in zip(opened, closed)]) if opened else None),
            goal("nominal twin: nothing named in any round (fraction of null loops)", 1.0, frac(quiet)),
            goal("nominal twin: real inside sim's 95% CI every round (fraction of null loops)", 1.0, frac(inside)),
            goal("loop peak RSS, GB (the helper's budget)", 8.0, max(peak) if peak else None, "<=")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="sim2real_visual_loop")
    parser.add_argument("--loop", nargs=4, action="append", default=[], metavar=("LABEL", "SEED", "TWIN", "DIR"))
    parser.add_argument("--null", nargs=3, action="append", default=[], metavar=("LABEL", "SEED", "DIR"))
    parser.add_argument("--notes", default="")
    args = parser.parse_args()
    rows = [loop_row(label, int(seed), twin, Path(d)) for label, seed, twin, d in args.loop]
    rows += [loop_row(label, int(seed), None, Path(d)) for label, seed, d in args.null]
    path = write_results(args.name, rows, goals(rows), notes=args.notes)
    print(path)


if __name__ == "__main__":
    main()
