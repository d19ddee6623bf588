"""Physical feedback that acts (issue 21): what the weights are on recorded rounds, and the loop with and without
them at equal budget.

``weights``: for each recorded round (``ROUND/eval`` sim records, ``ROUND/real`` twin records, ``ROUND/gap`` the
report), the feedback the loop would train the next round with and what it does to a demo pool's loss:

- session 11's failure bump over every randomized parameter (the reference: its mean over the pool underflowed);
- this session's failure weights (:func:`ast_robot.gap.weights.weights_from_failures`: the few parameters a
  Bonferroni t-test keeps, None on nominal-like outcomes) and the report's sysid-posterior weights when it retuned;
- per-demonstration loss weights of the one used (:mod:`ast_robot.trainers.feedback`) over the pool: spread and
  the share of the loss on the 10% most weighted episodes (10% when uniform).

``ablation``: two sim2real output folders (the same loop with and without ``--no-physical-feedback``): per round sim
and real success, the real tables' outcomes paired (exact McNemar), the training budget (rows drawn, forwarded,
backwarded) and wall time.

    python bench/sim2real_feedback.py weights --pool POOL ROUND... [--name N]
    python bench/sim2real_feedback.py ablation --on LOOP_ON --off LOOP_OFF [--name N] [--notes TEXT]
    python bench/sim2real_feedback.py tables --on RUN_ON... --off RUN_OFF... [--start RUN_START]

``tables``: the loops' final policies deployed as given on many more twin tables (the same tables for each):
per policy sim and real success, paired per seed and pooled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402


def all_dims_bump(sim: list[Any], real: list[Any], names: tuple[str, ...], k: int = 5) -> Any:
    """Session 11's failure weights (the reference): a bump over EVERY randomized parameter at the real failures'
    nearest sim episodes (by outcome), scale their spread (>= 10% of the sampled span)."""
    from ast_robot.gap.features import randomization_matrix
    from ast_robot.gap.weights import PhysicalWeights, _nearest_sim

    fails = [r for r in real if not r.success]
    near = _nearest_sim(sim, fails, k) if fails and names else None
    if near is None:
        return None
    theta = randomization_matrix(sim, names)
    matched = theta[near[0].ravel()]
    scale = np.maximum(matched.std(axis=0), 0.1 * np.ptp(theta, axis=0) + 1e-6)
    return PhysicalWeights(names, tuple(matched.mean(axis=0)), tuple(scale), len(fails) / len(real), "all dims")


def pool_effect(weights: Any, pool: list[dict[str, float]]) -> dict[str, Any]:
    """Loss weights of ``weights`` over the pool's draws (one step per episode: the pool's episodes are ~equal
    length): min, max, and the share of the loss the 10% most weighted episodes carry (uniform: 0.1)."""
    from ast_robot.trainers.feedback import loss_weights

    if weights is None:
        w = np.ones(len(pool))
    else:
        w = loss_weights([weights.log_weight(d) for d in pool])
    top = np.sort(w)[::-1][: max(1, len(w) // 10)]
    return {"w_min": float(w.min()), "w_max": float(w.max()), "top10_share": float(top.sum() / w.sum())}


def weights_rows(rounds: list[str], pool_dir: str) -> list[dict[str, Any]]:
    from ast_robot.envs.demos import load_demos
    from ast_robot.gap.analyzer import randomized_names
    from ast_robot.gap.weights import PhysicalWeights, weights_from_failures
    from ast_robot.records import load_episodes

    pool = [ep.dr for ep in load_demos(pool_dir, images_in_memory=False)]
    rows = []
    for folder in map(Path, rounds):
        sim, real = load_episodes(folder / "eval"), load_episodes(folder / "real")
        names = randomized_names(sim)
        old = all_dims_bump(sim, real, names)
        new = weights_from_failures(sim, real, names)
        posterior = None
        if (folder / "gap" / "weights.json").is_file():
            data = json.loads((folder / "gap" / "weights.json").read_text())
            posterior = PhysicalWeights.from_dict(data) if data.get("source") == "sysid posterior" else None
        used = posterior or new
        old_mean = float(np.mean([old(d) for d in pool])) if old is not None else None
        rows.append({"round": str(folder), "real": f"{sum(r.success for r in real)}/{len(real)}",
                     "sim": f"{sum(r.success for r in sim)}/{len(sim)}", "randomized": len(names),
                     "s11_all_dims_pool_mean": old_mean,
                     "failures_named": ",".join(new.names) if new is not None else "-",
                     "failures_centre": ",".join(f"{c:.3g}" for c in new.centre) if new is not None else "-",
                     "posterior_named": ",".join(posterior.names) if posterior is not None else "-",
                     "used": "posterior" if posterior is not None else ("failures" if new is not None else "none"),
                     **pool_effect(used, pool)})  # fmt: skip
    return rows


def _round_rows(arm: str, loop: Path) -> list[dict[str, Any]]:
    """Per round of one loop: sim and real success, the outcome strings (sim by episode seed, real by episode in
    the driver's order) and the real tables (their layouts) for pairing; the training budget."""
    from ast_robot.records import load_episodes

    rows = []
    for folder in sorted(loop.glob("*/round*")):
        sim = sorted(load_episodes(folder / "eval"), key=lambda r: r.seed)
        real = sorted(load_episodes(folder / "real"), key=lambda r: r.seed)
        rows.append({"arm": arm, "round": int(folder.name[5:]), "sim": sum(r.success for r in sim) / len(sim),
                     "n_sim": len(sim), "real": sum(r.success for r in real), "n_real": len(real),
                     "tables": "".join("1" if r.success else "0" for r in real), **_train_scalars(folder),
                     "folder": str(folder)})  # fmt: skip
        rows[-1]["_sim"] = {r.seed: r.success for r in sim}
        rows[-1]["_layouts"] = [r.meta.get("table") for r in real]
    return rows


def _train_scalars(folder: Path) -> dict[str, Any]:
    """The round's training budget from its config: fine-tune steps, batch, new demos; rows trained = steps x batch
    for an ungated run (every drawn row forwarded and backwarded; a gated run's counts are in its tb/ scalars).
    A round without a ``policy/ckpt``-trained run (round 0 deployed as given) trained 0 rows."""
    cfg = folder / "config.yaml"
    if not cfg.is_file():
        return {}
    import yaml

    data = yaml.safe_load(cfg.read_text())
    train, gated = data.get("train", {}), bool(data.get("gate", {}).get("enabled"))
    trained = any(folder.glob("ckpt-*"))
    steps, batch = train.get("finetune_steps") or train.get("steps"), train.get("batch_size")
    rows = (steps * batch if not gated else None) if trained else 0
    return {"steps": steps if trained else 0, "batch": batch, "lr": train.get("lr"), "gated": gated,
            "new_demos": train.get("finetune_demos") if trained else 0, "feedback_mix": train.get("feedback_mix"),
            "rows_trained": rows}  # fmt: skip


def mcnemar(a: str, b: str) -> dict[str, Any]:
    """Exact two-sided McNemar on paired outcome strings (1 = success): tables a fixed / broke vs b."""
    from scipy.stats import binomtest

    fixed = sum(x == "1" and y == "0" for x, y in zip(a, b))
    broke = sum(x == "0" and y == "1" for x, y in zip(a, b))
    p = binomtest(fixed, fixed + broke, 0.5).pvalue if fixed + broke else 1.0
    return {"on_only": fixed, "off_only": broke, "mcnemar_p": float(p)}


def ablation(on: Path, off: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both loops' rounds, then per round the paired comparison: real tables (only when the two arms drove the
    same table layouts) and sim episodes (the same seeds); the goal on the final round's real success."""
    rows = _round_rows("on", on) + _round_rows("off", off)
    for row in rows:  # real success per simulated (trained) sample, as bench/sim2real reports it
        done = row.get("rows_trained")
        row["real_per_1k_rows"] = 1000.0 * row["real"] / row["n_real"] / done if done else None
    paired = []
    for r in sorted({row["round"] for row in rows}):
        a = next((x for x in rows if x["arm"] == "on" and x["round"] == r), None)
        b = next((x for x in rows if x["arm"] == "off" and x["round"] == r), None)
        if a is None or b is None:
            continue
        same = a["_layouts"] == b["_layouts"] and None not in a["_layouts"]
        seeds = sorted(set(a["_sim"]) & set(b["_sim"]))
        sim_a, sim_b = ("".join("1" if x["_sim"][s] else "0" for s in seeds) for x in (a, b))
        paired.append({"arm": "paired on vs off", "round": r, "same_tables": same,
                       **({f"real_{k}": v for k, v in mcnemar(a["tables"], b["tables"]).items()} if same else {}),
                       "sim_paired_n": len(seeds), **{f"sim_{k}": v for k, v in mcnemar(sim_a, sim_b).items()}})  # fmt: skip
    for row in rows:
        row.pop("_sim"), row.pop("_layouts")
    last = max(r["round"] for r in rows)
    a = next(r for r in rows if r["arm"] == "on" and r["round"] == last)
    b = next(r for r in rows if r["arm"] == "off" and r["round"] == last)
    gain = 100 * (a["real"] / a["n_real"] - b["real"] / b["n_real"])
    goals = [goal("real success gain with physical feedback at equal budget (points, final round)", 10, gain)]
    return rows + paired, goals


def tables(on: list[Path], off: list[Path], start: Path | None = None) -> tuple[list[dict], list[dict]]:
    """Final policies deployed as given on the same many twin tables (``ast-robot sim2real --start-policy P --rounds
    1``: each folder a run root holding ``*/round0``): per policy sim and real success; per on/off pair (same
    seed) and pooled over pairs, the paired real comparison (McNemar on the discordant tables)."""
    if len(on) != len(off):
        raise ValueError(f"--on has {len(on)} folders, --off {len(off)}: give one off run per on run (same seed)")
    rows, pooled = [], {"on_only": 0, "off_only": 0, "n": 0, "on": 0, "off": 0}
    runs = [("start", start)] if start else []
    for i, (a, b) in enumerate(zip(on, off)):
        runs += [(f"on #{i}", a), (f"off #{i}", b)]
    got = {}
    for label, folder in runs:
        row = _round_rows(label, folder)[0]
        got[label] = row
        rows.append({k: v for k, v in row.items() if not k.startswith("_") and k != "tables"} | {"tables": row["tables"]})
    for i in range(len(on)):
        a, b = got[f"on #{i}"], got[f"off #{i}"]
        if a["_layouts"] != b["_layouts"] or None in a["_layouts"]:
            raise ValueError(f"{on[i]} and {off[i]}: the real tables differ; deploy both on the same driver seed and count")
        m = mcnemar(a["tables"], b["tables"])
        rows.append({"arm": f"paired on #{i} vs off #{i}", "n_real": a["n_real"], "real_on": a["real"],
                     "real_off": b["real"], **m})  # fmt: skip
        for k, v in (("on_only", m["on_only"]), ("off_only", m["off_only"]), ("n", a["n_real"]), ("on", a["real"]),
                     ("off", b["real"])):  # fmt: skip
            pooled[k] += v
    m = mcnemar("1" * pooled["on_only"] + "0" * pooled["off_only"], "0" * pooled["on_only"] + "1" * pooled["off_only"])
    rows.append({"arm": "pooled on vs off", "n_real": pooled["n"], "real_on": pooled["on"], "real_off": pooled["off"],
                 **m})  # fmt: skip
    gain = 100.0 * (pooled["on"] - pooled["off"]) / pooled["n"]
    return rows, [goal("real success gain with physical feedback at equal budget (points, pooled paired tables)", 10,
                       gain)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("weights")
    w.add_argument("rounds", nargs="+")
    w.add_argument("--pool", required=True)
    w.add_argument("--name", default="sim2real_feedback_weights")
    a = sub.add_parser("ablation")
    a.add_argument("--on", type=Path, required=True)
    a.add_argument("--off", type=Path, required=True)
    a.add_argument("--name", default="sim2real_feedback_ablation")
    t = sub.add_parser("tables")
    t.add_argument("--on", type=Path, nargs="+", required=True)
    t.add_argument("--off", type=Path, nargs="+", required=True)
    t.add_argument("--start", type=Path, default=None, help="the start policy's run on the same tables")
    t.add_argument("--name", default="sim2real_feedback_tables")
    for p in (w, a, t):
        p.add_argument("--notes", default="")
        p.add_argument("--runs", default="", help="this folder is written RUNS/ in the results (no machine paths)")
    args = parser.parse_args()
    if args.cmd == "weights":
        rows, goals = weights_rows(args.rounds, args.pool), []
    elif args.cmd == "tables":
        rows, goals = tables(args.on, args.off, args.start)
    else:
        rows, goals = ablation(args.on, args.off)
    if args.runs:
        rows = json.loads(json.dumps(rows).replace(str(Path(args.runs)).rstrip("/") + "/", "RUNS/"))
        root = str(Path(args.runs))
        sys.argv = ["RUNS" if x.rstrip("/") == root else x.replace(root + "/", "RUNS/") for x in sys.argv]
    print(write_results(args.name, rows, goals, args.notes))


if __name__ == "__main__":
    main()
