"""The pixel student's loop on a camera/lighting twin (issue 21, visual side): results of `ast-robot sim2real` runs.

The loops are run by the command in bench/results/sim2real_colour_rounds/README.md (`--start-policy` the UR5e pixel
student, `--demo-pool` its training pool, `--scenes-pool` its scenes file); each takes 15-60 min on the shared
2-core machine, so this script reads their folders rather than running them: per round the sim evaluation
(eval/summary.json), the gap report (gap/gap.json: success, culprits, retuned ranges, visual fit) and, where the
loop was started by a wrapper that writes them, its wall time, load and peak RSS (start.txt, end.txt,
time.txt of `/usr/bin/time -v`). Writes bench/results/<name>.json + .md with the issue's goals computed here.

    python bench/sim2real_visual_loop.py --name NAME --loop LABEL SEED TWIN.yaml LOOP_DIR [--loop ...] \
        [--null LABEL SEED LOOP_DIR] [--screen LABEL TWIN.yaml SCREEN_DIR]
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
PHYSICAL = {"object_mass_scale": "object_mass", "friction_scale": "friction", "object_friction_scale": "friction",
            "finger_friction_scale": "friction", "gripper_force_scale": "gripper_force"}  # -> the randomized range it names  # fmt: skip
OPEN_REAL, OPEN_SIM, CLOSED_REAL, ROUNDS = 0.5, 0.8, 0.8, 3  # the thresholds
TWIN_KINDS = ("visual_twin", "physical_twin", "nominal")


def round_row(folder: Path, label: str, seed: int) -> dict:
    """One round folder: sim success and its CI, real success, gap CI, culprits, what was retuned, the fitted cast."""
    sim = json.loads((folder / "eval" / "summary.json").read_text())
    rep = json.loads((folder / "gap" / "gap.json").read_text())
    s = rep["success"]
    fit = (rep.get("visual") or {}).get("fitted") or {}
    cast = [round(fit.get(f"colour_shift_{c}", 0.0), 3) for c in "rgb"] if fit else None
    return {"kind": "round", "twin": label, "seed": seed, "round": int(folder.name.removeprefix("round")),
            "sim": round(sim["success_rate"], 3), "sim_ci": [round(sim["ci_low"], 3), round(sim["ci_high"], 3)],
            "sim_n": sim["episodes"], "real": round(s["real"]["value"], 3), "real_n": s["n_real"],
            "gap_ci": [round(s["gap"]["low"], 3), round(s["gap"]["high"], 3)],
            "culprits": list(rep.get("culprits") or []), "retuned": rep.get("retuned") or {},
            "fitted_cast_rgb": cast, "camera_rms_levels": round((rep.get("visual") or {}).get("rms_nominal") or 0.0, 2),
            **trained_samples(folder)}  # fmt: skip


def trained_samples(folder: Path) -> dict:
    """The round's training budget from its TensorBoard log (the trainer's counters at its last step): samples
    drawn, forwarded and backwarded; empty for a round that was deployed as it is (no training, no log)."""
    events = sorted((folder / "tb").glob("events.out.tfevents.*"))
    if not events:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[-1]))
    acc.Reload()
    tags = set(acc.Tags().get("scalars", ()))
    return {name: int(acc.Scalars(f"train/{name}")[-1].value) for name in ("samples_seen", "forward_samples",
            "backward_samples") if f"train/{name}" in tags}  # fmt: skip


def run_info(loop_dir: Path) -> dict:
    """Wall time, load and the loop process's peak memory where the wrapper recorded them: VmRSS from
    `/usr/bin/time -v` (counts a memory-mapped file's resident pages) and RssAnon sampled every 5 s (anon.txt)."""
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
        info["peak_rss_gib"] = round(int(rss.group(1)) / 1024**2, 2) if rss else None
        info["wall"] = wall.group(1) if wall else None
    anon = loop_dir / "anon.txt"
    if anon.exists():
        values = [int(line.split()[1]) for line in anon.read_text().splitlines() if len(line.split()) >= 3]
        info["peak_anon_gib_sampled"] = round(max(values) / 1024**2, 2) if values else None
    return info


def loop_rows(label: str, seed: int, twin: str | None, loop_dir: Path) -> list[dict]:
    """The loop's own row (twin, truth, wall time, memory) and one row per analysed round."""
    rounds = sorted(loop_dir.glob("*/round[0-9]*"), key=lambda p: int(p.name.removeprefix("round")))
    rows = [round_row(r, label, seed) for r in rounds if (r / "gap" / "gap.json").exists()]
    hidden = {}
    if twin:
        import yaml

        hidden = yaml.safe_load(Path(twin).read_text()) or {}
    truth = sorted({TRUTH[k] for k in hidden if k in TRUTH} | {PHYSICAL[k] for k in hidden if k in PHYSICAL})
    kind = "nominal" if not hidden else "physical_twin" if set(hidden) <= set(PHYSICAL) else "visual_twin"
    head = {"kind": kind, "twin": label, "seed": seed, "hidden": hidden,
            "truth": truth, "rounds_analysed": len(rows), **run_info(loop_dir), "folder": str(loop_dir)}  # fmt: skip
    return [head, *rows]


def goals(rows: list[dict]) -> list[dict]:
    loops = [r for r in rows if r["kind"] in TWIN_KINDS]
    rounds = {(r["twin"], r["seed"]): [x for x in rows if x["kind"] == "round" and (x["twin"], x["seed"]) ==
                                       (r["twin"], r["seed"])] for r in loops}  # fmt: skip
    twins = [rounds[(r["twin"], r["seed"])] for r in loops if r["kind"] != "nominal"]
    truth = {(r["twin"], r["seed"]): r["truth"] for r in loops}
    twins = [t for t in twins if t]
    opened = [t for t in twins if t[0]["real"] <= OPEN_REAL and t[0]["sim"] >= OPEN_SIM]
    first = [bool(t[0]["culprits"]) and t[0]["culprits"][0] in truth[(t[0]["twin"], t[0]["seed"])] for t in twins]
    closed = [any(x["real"] >= CLOSED_REAL for x in t[1: ROUNDS + 1]) for t in opened]
    null = [rounds[(r["twin"], r["seed"])] for r in loops if r["kind"] == "nominal"]
    quiet = [all(not x["culprits"] for x in t) for t in null if t]
    inside = [all(x["sim_ci"][0] - 1e-9 <= x["real"] <= x["sim_ci"][1] + 1e-9 for x in t) for t in null if t]
    zero = [all(x["gap_ci"][0] <= 0 <= x["gap_ci"][1] for x in t) for t in null if t]
    rss = [r["peak_rss_gib"] for r in loops if r.get("peak_rss_gib") is not None]
    anon = [r["peak_anon_gib_sampled"] for r in loops if r.get("peak_anon_gib_sampled") is not None]
    frac = lambda xs: None if not xs else round(sum(xs) / len(xs), 3)  # noqa: E731
    screens = [r for r in rows if r["kind"] == "screen"]
    return [goal("hidden twin: seeds of the loop measured", 2, len({t[0]["seed"] for t in twins})),
            goal("round-0 real <= 50% where sim >= 80% (fraction of loop trials)", 1.0,
                 frac([t in opened for t in twins])),
            goal("true culprit named first in round 0 (fraction of trials)", 0.9, frac(first)),
            goal("real >= 80% within 3 fine-tune rounds (fraction of opened trials)", 1.0, frac(closed)),
            goal("nominal twin: nothing named in any round (fraction of null loops)", 1.0, frac(quiet)),
            goal("nominal twin: the gap's 95% CI holds 0 every round (fraction of null loops)", 1.0, frac(zero)),
            goal("nominal twin: real inside sim's 95% CI every round (fraction of null loops)", 1.0, frac(inside)),
            goal("screen: twins that open (real <= 50% where sim >= 80%; count)", 1,
                 sum(r["opened"] for r in screens) if screens else None),
            goal("screen: true culprit named first (fraction of screened twins)", 0.9,
                 frac([r["named_first"] for r in screens])),
            goal("loop peak VmRSS, GiB (time -v; counts mapped image files)", 8.0, max(rss) if rss else None, "<="),
            goal("loop peak anonymous RSS, GiB (sampled every 5 s)", 8.0, max(anon) if anon else None, "<=")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="sim2real_visual_loop")
    parser.add_argument("--loop", nargs=4, action="append", default=[], metavar=("LABEL", "SEED", "TWIN", "DIR"))
    parser.add_argument("--null", nargs=3, action="append", default=[], metavar=("LABEL", "SEED", "DIR"))
    parser.add_argument("--screen", nargs=3, action="append", default=[], metavar=("LABEL", "TWIN", "DIR"),
                        help="A deploy-only screen (--rounds 1) of the start policy on a twin: its round 0.")
    parser.add_argument("--notes", default="")
    args = parser.parse_args()
    rows = [row for label, seed, twin, d in args.loop for row in loop_rows(label, int(seed), twin, Path(d))]
    rows += [row for label, seed, d in args.null for row in loop_rows(label, int(seed), None, Path(d))]
    for label, twin, d in args.screen:
        head, *rounds = loop_rows(label, 0, twin, Path(d))
        rows += [{**x, "kind": "screen", "hidden": head["hidden"], "truth": head["truth"],
                  "named_first": bool(x["culprits"]) and x["culprits"][0] in head["truth"],
                  "opened": x["real"] <= OPEN_REAL and x["sim"] >= OPEN_SIM, "wall": head.get("wall"),
                  "load_start": head.get("load_start"), "load_end": head.get("load_end")} for x in rounds]  # fmt: skip
    path = write_results(args.name, rows, goals(rows), notes=args.notes)
    print(path)


if __name__ == "__main__":
    main()
