"""The pick-and-place reality-gap analyzer against hidden twins: is the true culprit ranked first?

For each hidden twin (configs/twin/pickplace_*.yaml: friction, cube mass, grasp force, light, camera pose,
colour cast, the arm's command latency; plus the nominal twin) and each seed: deploy ``scripted:pickplace`` on the twin **in-process**
(:func:`deploy_on_twin`: the deployment's own DeploymentSession, safety module, gripper commander and
EpisodeTracker drive the twin's own physics, table and camera in lock-step at the deploy rate, as
``ast_robot.twin.lockstep`` does for reach; no ROS), write what the recorder writes (a ROS 2 bag of the outcome
records and the camera thinned to 2 Hz, with the one bag writer), and run ``gap_report`` on it with the
pick-and-place pixel experiment's config. The sim side is the same program on the nominal scene (records
relabelled ``source: sim``). Nothing in ast_robot.gap reads the hidden files; this bench reads them to score.

A trial is right when the first name of the combined ranking (physical culprits by their share of the
trajectory loss, then visual groups by their share of the pixel loss; ``ast_robot.gap.pick.ranked_culprits``)
is the twin's; the nominal twin is right when nothing is named. The report's command latency line
(``ast_robot.gap.latency``; the records declare no latency) must appear exactly for the late twin.

    MUJOCO_GL=egl .venv/bin/python bench/gap_pickplace.py [--seeds 2] [--episodes 3] [--robot ur5e]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ast_robot.records import EpisodeRecord, write_records  # noqa: E402
from bench.common import goal, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 5.0  # s per episode: the program places its cube by ~3.8 s
CAMERA_HZ, BAG_CAMERA_HZ = 10.0, 2.0  # the twin's camera rate; the recorder's --camera-rate
NOISY = {"joint_noise_rad": 5e-4}  # rad: the reach bench's joint noise (bench/gap_sysid.py), on top of a twin file
# (scenario, the twin file, the name the analyzer should rank first (None: nothing named), more hidden values)
SCENARIOS = [
    ("nominal", None, None, {}),
    ("friction x0.3", "pickplace_friction.yaml", "friction", {}),
    ("cube mass x3", "pickplace_mass.yaml", "object_mass", {}),
    ("grasp force x0.3", "pickplace_force.yaml", "gripper_force", {}),
    ("light x0.45", "pickplace_light.yaml", "light_intensity", {}),
    ("camera +4 cm 5 deg", "pickplace_camera.yaml", "camera_pose", {}),
    ("colour cast", "pickplace_colour.yaml", "colour_shift", {}),
    ("nominal + 0.5 mrad joint noise", None, None, NOISY),
    ("friction x0.3 + 0.5 mrad noise", "pickplace_friction.yaml", "friction", NOISY),
    ("cube mass x3 + 0.5 mrad noise", "pickplace_mass.yaml", "object_mass", NOISY),
    ("grasp force x0.3 + 0.5 mrad noise", "pickplace_force.yaml", "gripper_force", NOISY),
    ("latency 40 ms", "pickplace_latency.yaml", "latency", {}),
    ("latency 40 ms + 0.5 mrad noise", "pickplace_latency.yaml", "latency", NOISY),
    # 1.5 control steps: the whole-step fit names nothing (truth None); the line must come from the sub-step scan
    ("latency 60 ms", "pickplace_latency60.yaml", None, {}),
]  # fmt: skip


class PickTwinDeployment:
    """``scripted:pickplace`` through a DeploymentSession on an in-process pick-and-place twin."""

    def __init__(self, robot: str, hidden: Any, seed: int = 0, timeout_s: float = TIMEOUT_S, wrist: bool = False) -> None:
        """``wrist``: the twin's model has the envs' wrist camera (on its hidden mount), whose frames are taken
        with the scene camera's (``wrist_frames``, one list per episode)."""
        import mujoco

        from ast_robot.config.deploy import DeployConfig
        from ast_robot.deploy.loader import load_deployable
        from ast_robot.deploy.robot_io import load_robot_io
        from ast_robot.deploy.runner import PolicyRunner
        from ast_robot.deploy.session import SAFETY_MODE_NORMAL, DeploymentSession
        from ast_robot.twin.pickplace import PickPlaceTable, build_model
        from ast_robot.twin.sim import TwinSim

        self.io = io = load_robot_io(robot)
        cfg = DeployConfig(episode_timeout_s=timeout_s)
        policy, contract = load_deployable("scripted:pickplace", robot, io)
        runner = PolicyRunner.for_robot(policy, robot, cfg, synchronous=True, contract=contract, io=io)
        runner.warm_up()
        self.sim = TwinSim(robot, hidden, seed=seed, joint_names=io.joint_names,
                           model=build_model(robot, hidden, wrist_camera=wrist))  # fmt: skip
        self.table = PickPlaceTable(self.sim, io.gripper, hidden)
        meta = {"control_hz": cfg.control_hz, "command_interface": cfg.command_interface,
                "max_joint_speed_scale": cfg.max_joint_speed_scale}  # fmt: skip
        self.session = DeploymentSession(runner, list(io.joint_names), robot, timeout_s=timeout_s, meta=meta,
                                         end_on_success=cfg.end_on_success)  # fmt: skip
        self.session.on_safety_mode(SAFETY_MODE_NORMAL)
        self.renderer = mujoco.Renderer(self.sim.model, *io.camera_size)
        self.wrist_renderer = mujoco.Renderer(self.sim.model, *io.wrist_camera_size) if wrist else None
        self.wrist_frames: list[list[tuple[float, np.ndarray]]] = []
        self.clock_s = 0.0

    def close(self) -> None:
        self.renderer.close()
        if self.wrist_renderer is not None:
            self.wrist_renderer.close()
        self.session.close()

    def run(self, sheets: list[tuple[str, str]]) -> list[tuple[EpisodeRecord, float, list[tuple[float, np.ndarray]]]]:
        """(record, its end time s, camera frames (time s, image)) per sheet (table JSON, instruction)."""
        return [self._episode(text, instruction) for text, instruction in sheets]

    def _episode(self, text: str, instruction: str) -> tuple[EpisodeRecord, float, list]:
        from ast_robot.twin.pickplace import parse_scene

        s, dt = self.session, self.session.period_s
        self.sim.reset()  # /twin/reset: home, gripper open; then the driver sets the table
        self.table.set_scene(parse_scene(text))
        self.table.after_reset()
        s.on_table(text)
        s.on_instruction(instruction)
        t0 = self.clock_s = self.clock_s + 1.0  # the driver's pause between episodes
        # the driver streams states before the start: the first build trust, the last two control periods show the
        # arm at rest (an episode starts only then: SafetyMonitor.settled), the last speed interval ending at t0
        times = [t0 - 2 * dt - k * 0.002 for k in reversed(range(8))] + [t0 - dt, t0]
        for now in times:
            self._state(now, strict=now == t0)
        self.wrist_frames.append([])
        frames = [self._image(t0)]
        s.start_episode(t0)
        every = max(1, round(1.0 / (CAMERA_HZ * dt)))  # the tracker and the camera at 10 Hz
        for k in range(int(np.ceil(s.episodes.timeout_s / dt)) + 20):
            now = t0 + k * dt
            self._state(now)
            if k % every == 0:
                s.on_object_poses([self.table.object_position(i) for i in range(self.table.n_objects)])
                if k:
                    frames.append(self._image(now))
            out = s.tick(now)
            if out.command is not None:
                self.sim.command_trajectory(list(self.io.joint_names), [(out.command, s.segment_time(out.command))])
            if out.gripper is not None:
                self.table.command(out.gripper)
            self.sim.step_to((k + 1) * dt)
            self.clock_s = now + dt
            if out.record is not None:
                return out.record, now + dt, frames
        raise RuntimeError("episode did not end")

    def _state(self, now: float, strict: bool = True) -> None:
        q, dq, _ = self.sim.joint_state()
        names, extra = self.table.state_entries()
        reason = self.session.on_joint_state(list(self.io.joint_names) + names, list(q) + extra,
                                             list(dq) + [0.0] * len(extra), now, now, now)  # fmt: skip
        if reason is not None and strict:
            raise RuntimeError(reason)

    def _image(self, now: float) -> tuple[float, np.ndarray]:
        if self.wrist_renderer is not None:  # the twin's wrist camera: its hidden mount, no colour shift
            from ast_robot.envs.wrist import WRIST_CAMERA

            self.wrist_renderer.update_scene(self.sim.data, camera=WRIST_CAMERA)
            self.wrist_frames[-1].append((now, self.wrist_renderer.render()))
        self.renderer.update_scene(self.sim.data, camera=0)
        pixels = self.table.post_process(self.renderer.render())
        reason = self.session.on_image("rgb8", pixels.shape[0], pixels.shape[1], pixels.shape[1] * 3,
                                       pixels.tobytes(), now)  # fmt: skip
        if reason is not None:
            raise RuntimeError(reason)
        return now, pixels


def write_bag(path: Path, episodes: list[tuple[EpisodeRecord, float, list]],
              wrist: list[list[tuple[float, np.ndarray]]] | None = None, wrist_topic: str | None = None) -> Path:  # fmt: skip
    """What ``ast-robot record --camera-rate 2`` writes: the outcome records and the camera at 2 Hz (with
    ``wrist``, one frame list per episode: the wrist camera's frames on ``wrist_topic`` (default: the driver's) too)."""
    from ast_robot.config.deploy import RosNames
    from ast_robot.records.bag import BagWriter, recorded_topics

    names = RosNames()
    wrist_topic = wrist_topic or names.wrist_camera
    topics = recorded_topics(names, joint_states=False, camera=True)
    cameras = [names.camera] + ([wrist_topic] if wrist is not None else [])
    topics.update({t: topics[names.camera] for t in cameras})
    with BagWriter(path, topics, max_rate_hz={t: BAG_CAMERA_HZ for t in cameras}) as bag:
        for i, (record, end_s, frames) in enumerate(episodes):
            _write_frames(bag, names.camera, topics[names.camera], frames)
            if wrist is not None:
                _write_frames(bag, wrist_topic, topics[names.camera], wrist[i])
            bag.write_record(record, int(round(end_s * 1e9)))
    return path


def _write_frames(bag: Any, topic: str, msgtype: str, frames: list[tuple[float, np.ndarray]]) -> None:
    types = bag.typestore.types
    for t, img in frames:
        ns = int(round(t * 1e9))
        stamp = types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        msg = types[msgtype](header=types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera"), height=img.shape[0],
                             width=img.shape[1], encoding="rgb8", is_bigendian=0, step=img.shape[1] * 3,
                             data=img.reshape(-1))  # fmt: skip
        bag.write(topic, bag.typestore.serialize_cdr(msg, msgtype), ns)


def deploy_on_twin(robot: str, hidden_file: str | None, seed: int, episodes: int, bag: Path,
                   extra: dict | None = None) -> list[EpisodeRecord]:  # fmt: skip
    """Real records (and their bag at ``bag``) of ``episodes`` scripted episodes on the hidden twin (the file's
    values, then ``extra``'s)."""
    import dataclasses

    from ast_robot.twin.hidden import load_hidden
    from ast_robot.twin.pickplace import episode_sheets

    hidden = load_hidden(None if hidden_file is None else ROOT / "configs" / "twin" / hidden_file)
    hidden = dataclasses.replace(hidden, **(extra or {}))
    twin = PickTwinDeployment(robot, hidden, seed=seed)
    try:
        out = twin.run(episode_sheets(robot, episodes, seed=10 * seed))
    finally:
        twin.close()
    write_bag(bag, out)
    return [r for r, _, _ in out]


def sim_records(robot: str, episodes: int, folder: Path) -> Path:
    """The sim side: the same program on the nominal scene (seeds 100..), relabelled source 'sim'."""
    from ast_robot.twin.hidden import HiddenParams
    from ast_robot.twin.pickplace import episode_sheets

    twin = PickTwinDeployment(robot, HiddenParams(), seed=100)
    try:
        out = twin.run(episode_sheets(robot, episodes, seed=100))
    finally:
        twin.close()
    write_records(folder, [EpisodeRecord.from_dict({**r.to_dict(), "source": "sim"}) for r, _, _ in out])
    return folder


def trial(robot: str, scenario: tuple, seed: int, episodes: int, sim_dir: Path, scratch: Path, replay: Any) -> dict:
    from ast_robot.gap.pick import ranked_culprits
    from ast_robot.gap.pipeline import gap_report

    name, hidden_file, truth, extra = scenario
    bag = scratch / f"{''.join(c if c.isalnum() else '_' for c in name)}-{seed}"
    start = time.perf_counter()
    real = deploy_on_twin(robot, hidden_file, seed, episodes, bag, extra)
    t_deploy = time.perf_counter() - start
    out = gap_report(sim_dir, bag, scratch / f"report-{bag.name}", config=ROOT / "configs" / "experiments" / f"pickplace_{robot}_pixels_bc.yaml",
                     seed=seed, simulator=replay)  # fmt: skip
    rep = out.report
    ranked = ranked_culprits(rep.sysid, rep.visual)
    first = ranked[0] if ranked else None
    sysid, vis = rep.sysid, rep.visual
    return {"scenario": name, "seed": seed, "truth": truth or "-", "ranked": ", ".join(ranked) or "-",
            "correct": first == truth, "real_success": sum(r.success for r in real) / len(real),
            # the report's command latency line (gap.latency): the records declare none (configs/deploy/<robot>.yaml)
            "latency_line": any(w.startswith("Command latency:") for w in rep.warnings),
            "latency_line_ms": next((int(m.group(1)) for w in rep.warnings
                                     if (m := re.match(r"Command latency: .*? (\d+) ms after", w))), "-"),
            "fit": "-" if sysid is None else ", ".join(f"{n}={v:.3g}" for n, v in zip(sysid.names, sysid.mean)),
            "unexplained": "-" if sysid is None else round(sysid.unexplained, 3),
            "pixel_rms_nominal": "-" if vis is None else round(vis.rms_nominal, 2),
            "look": "-" if vis is None or not vis.fitted else ", ".join(f"{k}={v:.3g}" for k, v in vis.fitted.items()),
            "retuned": json.dumps(rep.provenance.get("retune", "-"))[1:-1][:160],
            "deploy_s": round(t_deploy, 1), "analyze_s": round(time.perf_counter() - start - t_deploy, 1)}  # fmt: skip


def compare_with_mujoco_sysid(robot: str, episodes: int, scratch: Path) -> list[dict]:
    """Seed 0 of each physical scenario: our fit (a scan of each parameter, then Gauss-Newton) beside MuJoCo's
    ``mujoco.sysid`` (box-constrained Gauss-Newton from the nominal values, its 95% intervals), both with
    PickReplay as the residual, same records, same box."""
    from ast_robot.config import load_config
    from ast_robot.envs.randomization import resolve
    from ast_robot.gap.pick import PICK_PARAMS, run_pick_sysid
    from ast_robot.gap.pick_replay import PickReplay
    from ast_robot.gap.sysid import space_from_randomization
    from ast_robot.twin.hidden import load_hidden
    from bench.gap_sysid import mujoco_sysid

    cfg = load_config(ROOT / "configs" / "experiments" / f"pickplace_{robot}_pixels_bc.yaml")
    cfg.randomization = resolve(cfg.randomization)
    # the cube's parameters: mujoco.sysid's finite differences cannot step an integer latency (ours fits it beside)
    space = space_from_randomization(cfg.randomization, cfg.gap.search_expansion, [n for n in PICK_PARAMS if n != "latency"])
    truths = {"friction": ("friction_scale", "friction"), "object_mass": ("object_mass_scale", "object_mass"),
              "gripper_force": ("gripper_force_scale", "gripper_force")}  # fmt: skip
    replay, rows = PickReplay(robot), []
    for name, hidden_file, truth, extra in SCENARIOS:
        if truth not in truths:
            continue
        real = deploy_on_twin(robot, hidden_file, 0, episodes, scratch / f"cmp-{len(rows)}", extra)
        value = getattr(load_hidden(ROOT / "configs" / "twin" / hidden_file), truths[truth][0])
        start = time.perf_counter()
        ours, _, _ = run_pick_sysid(cfg, real, replay, 0, None)
        ours_s = time.perf_counter() - start
        theirs = mujoco_sysid(replay, real, space)
        est = theirs["estimate"][truth]
        rows.append({"scenario": name, "truth": f"{truth}={value:g}",
                     "ours": round(ours.mean[ours.names.index(truth)], 4), "ours_first": (ours.culprits() or ("-",))[0],
                     "ours_rel_error": round(abs(ours.mean[ours.names.index(truth)] - value) / value, 4),
                     "ours_s": round(ours_s, 1), "mujoco_sysid": round(est, 4),
                     "mujoco_sysid_rel_error": round(abs(est - value) / value, 4),
                     "mujoco_sysid_others": ", ".join(f"{k}={v:.3g}" for k, v in theirs["estimate"].items() if k != truth),
                     "mujoco_sysid_s": round(theirs["seconds"], 1)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=3, help="real episodes per trial")
    parser.add_argument("--robot", default="ur5e")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--name", default=None, help="results file name (default gap_pickplace[_ROBOT]): --only runs "
                        "should not overwrite the whole table")  # fmt: skip
    parser.add_argument("--compare", action="store_true", help="only: our fit beside mujoco.sysid (needs the "
                        "sysid extra), results in gap_pickplace_mujoco_sysid.*")  # fmt: skip
    args = parser.parse_args()
    from ast_robot.gap.pick_replay import PickReplay

    scratch = Path(tempfile.mkdtemp(prefix="gap_pickplace-"))
    if args.compare:
        try:
            rows = compare_with_mujoco_sysid(args.robot, args.episodes, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        ours = float(np.mean([r["ours_rel_error"] <= 0.15 for r in rows]))
        theirs = float(np.mean([r["mujoco_sysid_rel_error"] <= 0.15 for r in rows]))
        goals = [goal("ours: true value within 15% (share of trials)", 0.9, round(ours, 3)),
                 goal("mujoco.sysid: true value within 15% (share of trials; a comparison, not our goal)", 0.9,
                      round(theirs, 3))]  # fmt: skip
        write_results("gap_pickplace_mujoco_sysid", rows, goals, "Physical scenarios of bench/gap_pickplace.py, seed 0, "
                      f"{args.episodes} episodes; same PickReplay residual and search box for both.")  # fmt: skip
        return
    rows = []
    try:
        sim_dir = sim_records(args.robot, 4, scratch / "sim")
        replay = PickReplay(args.robot)
        chosen = [s for s in SCENARIOS if not args.only or s[0] in args.only.split(",")]
        for scenario in chosen:
            for seed in range(args.seeds):
                rows.append(trial(args.robot, scenario, seed, args.episodes, sim_dir, scratch, replay))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    culprit = [r for r in rows if r["truth"] != "-"]
    null = [r for r in rows if r["truth"] == "-" and not _late(r["scenario"])]
    goals = [goal("true culprit ranked first (share of hidden-twin trials)", 0.9,
                  round(float(np.mean([r["correct"] for r in culprit])), 3) if culprit else None),
             goal("nominal twin: nothing named (share of trials)", 1.0,
                  round(float(np.mean([r["correct"] for r in null])), 3) if null else None),
             goal("latency line exactly where the twin's arm is late (share of trials)", 1.0,
                  round(float(np.mean([r["latency_line"] == _late(r["scenario"]) for r in rows])), 3) if rows else None)]  # fmt: skip
    notes = ("Real records: scripted:pickplace deployed in-process on the twin's physics, table and camera through the "
             "deployment's own session (no ROS), bag written by the project's bag writer (outcomes + camera at 2 Hz). "
             f"{args.episodes} episodes of {TIMEOUT_S:g} s per trial; noise-free joints (the twin's default) unless the "
             "scenario adds 0.5 mrad.")  # fmt: skip
    name = args.name or (f"gap_pickplace_{args.robot}" if args.robot != "ur5e" else "gap_pickplace")
    write_results(name, rows, goals, notes)


def _late(scenario: str) -> bool:
    """Whether the scenario's twin has an arm later than the records declare (none: the shipped deploy YAMLs)."""
    return next(bool(f and "latency" in f) for name, f, _, _ in SCENARIOS if name == scenario)


if __name__ == "__main__":
    main()
