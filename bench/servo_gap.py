"""How fast each twin joint's position servo closes a gap when the joint is freed (issue 21, freed_lead's K).

:meth:`ast_robot.robot.safety.SafetyLimits.freed_lead` bounds how far a command may lead a joint held still by
a model of its servo: freed from a static gap g it peaks at about sqrt(K g). K was SERVO_ACCEL_SHARE x the
data-sheet acceleration, fitted on the FR3 wrist only (gaps 0.10 / 0.125 / 0.21 rad). This bench measures it for
every joint of both twins: the joint held still at home (a kinematic block) while the command stands ``g`` rad
away (both directions; every other joint commanded home), then freed; its peak |qvel| over every physics step of
the next 0.4 s (the twin's speed stop off). K_fit = peak^2 / g (the largest over the gaps: the bound must cover
the worst; small gaps are in the servo's linear range, where the peak grows like g, not sqrt(g)), and its ratio
to the K the safety module assumes (SafetyLimits.servo_closing, from arm.SERVO_CLOSING: set from this bench).

    .venv/bin/python bench/servo_gap.py --name servo_gap
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import goal, write_results  # noqa: E402

HOLD_S = 0.1  # the block holds this long before it lets go (the servo's force is saturated well before)
FREE_S = 0.4  # then the joint runs free this long (peak and settle)


def freed_peak(robot: str, joint: int, gap: float, hidden: object = None) -> float:
    """Peak |qvel| (rad/s) of ``joint`` freed from a static ``gap`` (rad, signed) to its command."""
    from ast_robot.twin.sim import TwinSim

    sim = TwinSim(robot, hidden)
    sim.speed_limit[:] = np.inf  # measure how fast, not whether it stops
    q0, dt = sim.true_positions(), sim.model.opt.timestep
    cmd = q0.copy()
    cmd[joint] += gap
    sim.command_positions(cmd)
    qadr, dof, peak = sim.idx.qpos[joint], sim.idx.dof[joint], 0.0
    for k in range(round((HOLD_S + FREE_S) / dt)):
        sim.step_to(sim.time + dt)
        if k * dt < HOLD_S:
            sim.data.qpos[qadr], sim.data.qvel[dof] = q0[joint], 0.0
        else:
            peak = max(peak, abs(float(sim.data.qvel[dof])))
    return peak


def robot_rows(robot: str, gaps: list[float]) -> list[dict]:
    """One row per joint: peaks per signed gap, the K that explains the worst, the module's K."""
    from ast_robot.config import DeployConfig
    from ast_robot.robot.safety import SafetyLimits, arm
    from ast_robot.robot.specs import get_robot

    spec = get_robot(robot)
    lim = SafetyLimits.from_robot(spec, DeployConfig(robot=robot, command_interface="forward_position"))
    rows = []
    for j in range(spec.n_joints):
        signed = [s * g for g in gaps for s in (1.0, -1.0)]
        peaks = [freed_peak(robot, j, g) for g in signed]
        k_each = [p * p / abs(g) for p, g in zip(peaks, signed)]
        k_model, k_used = arm.SERVO_ACCEL_SHARE * lim.max_acceleration[j], lim.servo_closing[j]
        rows.append({"robot": robot, "joint": j + 1, "gaps_rad": signed, "peaks_rad_s": np.round(peaks, 3).tolist(),
                     "k_fit": round(max(k_each), 1), "k_min": round(min(k_each), 1), "k_model": float(k_model),
                     "k_fit_over_model": round(max(k_each) / k_model, 2), "k_used": float(k_used),
                     "k_fit_over_used": round(max(k_each) / k_used, 2),
                     "max_lead_rad": round(float(lim.max_lead[j]), 4),
                     "data_sheet_rad_s": float(lim.max_velocity[j]),
                     "peak_at_max_lead_over_data_sheet": round(float(np.sqrt(max(k_each) * lim.max_lead[j])
                                                                     / lim.max_velocity[j]), 3)})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", action="append", default=[], help="fr3 / ur5e (default: both)")
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2])
    parser.add_argument("--name", default="servo_gap")
    args = parser.parse_args()
    start, rows = time.perf_counter(), []
    for robot in args.robot or ["fr3", "ur5e"]:
        rows += robot_rows(robot, args.gaps)
        print(*rows[-1:], flush=True)
    goals = [goal("every joint's measured K (worst gap) / the K freed_lead now assumes (forward position)", 1.0,
                  max(r["k_fit_over_used"] for r in rows), "<="),
             goal("the same / the data-sheet model SERVO_ACCEL_SHARE x acceleration (fitted on the FR3 wrist)", 1.0,
                  max(r["k_fit_over_model"] for r in rows), "<=")]  # fmt: skip
    notes = (f"Twin sims at their nominal hidden parameters; each joint held still at home {HOLD_S} s under a "
             f"command g rad away (others commanded home), then freed for {FREE_S} s; peak |qvel| over every "
             "physics step. k_fit = max over gaps of peak^2 / |g| (rad/s^2); k_model = SERVO_ACCEL_SHARE x "
             "the data-sheet acceleration (arm.JOINT_ACCELERATION); k_used = SafetyLimits.servo_closing through "
             "forward positions (arm.SERVO_CLOSING: k_fit x 1.1 rounded up to 5, at least k_model; the UR5e "
             "through its trajectory interface keeps k_model); peak_at_max_lead_over_data_sheet: "
             f"sqrt(k_fit x max_lead) / data sheet. {time.perf_counter() - start:.0f} s.")
    print(write_results(args.name, rows, goals, notes))


if __name__ == "__main__":
    main()
