"""Issue 20 deliverable 6 on a GPU machine: the three-arm gated-BC bench (bench/robot_learning_pixels_gated.py)
in the regime where the student learns, from a bare machine with no internet, in stages that each stand alone.

    python3 bench/device/gated_pixels.py all --out "$OUT"        # every stage not done yet, within --deadline-s
    python3 bench/device/gated_pixels.py STAGE --out "$OUT"      # one of: setup render collect scenes train

Run it with the machine's own python3 (the one with CUDA torch). Stages, each marked done in --work:

* ``setup``: a venv (``--system-site-packages``, so the machine's torch, numpy, scipy, yaml are used) with the
  wheels of ``--wheels`` (bench/device/make_wheelhouse.sh) installed offline and this repo editable; no numba
  there: ``bench/device/nonumba`` stands in for it (its README); EGL library paths chosen (env.json).
* ``render``: MuJoCo renders the training camera through EGL (one clear line and exit 2 if not), CUDA exists
  when --device asks for it; the GL renderer string recorded (an NVIDIA one, or Mesa's llvmpipe on CPU).
* ``collect``: the UR5e pixel demos of the config's recipe (configs/experiments/pickplace_ur5e_pixels_bc.yaml,
  step 1: deploy layout, 2 cubes, 2 pads, visual randomization, wrist camera, through the deploy pipeline
  (no ROS), 100-step episodes, DART noise 0.1, seeds 0..), --episodes for training + --heldout-episodes after
  them, split over --workers processes by seed range and pooled in seed order (bench/pool_demos.py).
* ``smoke``: the bench's own --smoke (6 episodes, 12 steps, 3 arms) on --device with 2 eval workers: the
  device path (CUDA training, stale scores, parallel evaluation) fails here in ~1 minute, not in ``train``.
* ``scenes``: the --scenes single-render scenes the bench would render itself (seeds seed + 5,000,000 + i),
  split over the workers by seed range, written as the ``train.scenes_file`` the bench checks and reads.
* ``train``: the bench on --device with --eval-workers, its JSON/MD and log written to --out.

Each stage appends its wall time and the machine's load to ``OUT/stages.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
NONUMBA = REPO / "bench/device/nonumba"
REQUIREMENTS = REPO / "bench/device/requirements.txt"
STAGES = ("setup", "render", "collect", "smoke", "scenes", "train")
# the plateau run's gate settings (bench/results/robot_learning_pixels_gated_plateau.md), the last three-arm run
PLATEAU_SET = ["gate.min_probability=0.3", "significance.loss_groups=2", "gate.anneal=0.15"]
COLLECT_FLAGS = ["--env", "ast_robot/PickPlaceUR5e-v0", "--observation", "deploy", "--visual", "--objects", "2",
                 "--pads", "2", "--wrist-camera", "--deploy-pipeline", "--max-episode-steps", "100"]  # fmt: skip


# ------------------------------------------------------------------------------------------- plumbing
def venv_python(args: argparse.Namespace) -> Path:
    return args.work / "venv/bin/python"


def stage_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of every command run in the venv: setup's env.json on top of this one."""
    env = dict(os.environ, MUJOCO_GL="egl", PYOPENGL_PLATFORM="egl", OMP_NUM_THREADS="1",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")  # fmt: skip
    saved = args.work / "env.json"
    for key, value in (json.loads(saved.read_text()) if saved.is_file() else {}).items():
        env[key] = (
            f"{value}:{env[key]}" if key in ("PYTHONPATH", "LD_LIBRARY_PATH") and env.get(key) else value
        )
    return env


def run(cmd: list, args: argparse.Namespace, log: Path | None = None, check: bool = True) -> int:
    """Run ``cmd`` (in the repo, the stage env); its output to ``log`` when given."""
    cmd = [str(c) for c in cmd]
    print("+", " ".join(cmd)[:300], flush=True)
    out = open(log, "w") if log else None  # noqa: SIM115  (closed below)
    try:
        rc = subprocess.run(
            cmd, cwd=REPO, env=stage_env(args), stdout=out, stderr=subprocess.STDOUT if out else None
        ).returncode
    finally:
        if out:
            out.close()
    if check and rc:
        tail = log.read_text()[-3000:] if log else ""
        raise SystemExit(
            f"{tail}\nstage command failed (exit {rc}): {' '.join(cmd)[:300]}"
            + (f"; log {log}" if log else "")
        )
    return rc


def run_parallel(cmds: list[list], logs: list[Path], args: argparse.Namespace) -> None:
    """Run the commands at once; fail naming the first that failed (and its log's tail)."""
    procs = []
    for cmd, log in zip(cmds, logs):
        with open(log, "w") as out:
            procs.append(subprocess.Popen([str(c) for c in cmd], cwd=REPO, env=stage_env(args), stdout=out,
                                          stderr=subprocess.STDOUT))  # fmt: skip
    codes = [p.wait() for p in procs]
    for code, log in zip(codes, logs):
        if code:
            raise SystemExit(f"{log.read_text()[-2000:]}\nworker failed (exit {code}); log {log}")


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """(first, count) of ``parts`` contiguous ranges covering 0..total-1 (empty ones left out)."""
    base, extra = divmod(total, parts)
    out, first = [], 0
    for i in range(parts):
        count = base + (i < extra)
        if count:
            out.append((first, count))
        first += count
    return out


def data_key(args: argparse.Namespace) -> dict:
    """What the data stages' output depends on: `all` redoes a stage marked done with other values."""
    return {"episodes": args.episodes, "heldout": args.heldout_episodes, "scenes": args.scenes, "camera": args.camera,
            "wrist": args.wrist, "seed": args.seed, "set": args.set}  # fmt: skip


def done_before(args: argparse.Namespace, stage: str) -> bool:
    marker = args.work / f"done_{stage}"
    return marker.is_file() and json.loads(marker.read_text()).get("data") == json.loads(
        json.dumps(data_key(args))
    )


def record(args: argparse.Namespace, stage: str, seconds: float, **extra) -> None:
    """Append the stage's wall time, load and machine to OUT/stages.json (and mark it done in --work)."""
    path = args.out / "stages.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    rows.append({"stage": stage, "wall_s": round(seconds, 1), "loadavg_1min": round(os.getloadavg()[0], 2),
                 "cpus": os.cpu_count(), "machine": platform.node(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 **extra})  # fmt: skip
    path.write_text(json.dumps(rows, indent=1))
    (args.work / f"done_{stage}").write_text(json.dumps({**rows[-1], "data": data_key(args)}))
    print(f"stage {stage}: {seconds:.0f} s", json.dumps(extra)[:400], flush=True)


# ------------------------------------------------------------------------------------------- setup
PARENT_PTH = "_device_parent_site.pth"


def setup(args: argparse.Namespace) -> dict:
    """The venv on this python (its packages visible), the wheelhouse installed offline, the repo editable."""
    if not args.wheels.is_dir():
        raise SystemExit(
            f"--wheels {args.wheels}: no such folder; carry it (bench/device/make_wheelhouse.sh makes it)"
        )
    vpy = venv_python(args)
    if not vpy.exists():
        run(
            [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", args.work / "venv"],
            args,
        )
    _see_parent_site(vpy, args)
    pip = _pip(args)
    index = ["--no-index", "--find-links", args.wheels]
    run([*pip, "install", *index, "-r", REQUIREMENTS], args, args.work / "logs/pip_requirements.log")
    run([*pip, "install", *index, "--no-deps", "-e", REPO], args, args.work / "logs/pip_repo.log")
    (args.work / "env.json").write_text(json.dumps(_egl_env(args)))  # env.json also holds PYTHONPATH
    probe = ("import json, sys, numpy, torch, mujoco, gymnasium; "
             "print(json.dumps({'python': sys.version.split()[0], 'torch': torch.__version__, 'numpy': numpy.__version__, "
             "'mujoco': mujoco.__version__, 'gymnasium': gymnasium.__version__, 'cuda': torch.cuda.is_available(), "
             "'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))")  # fmt: skip
    found = subprocess.run([vpy, "-c", probe], cwd=REPO, env=stage_env(args), capture_output=True, text=True)
    if found.returncode:
        raise SystemExit(f"setup: the venv cannot import the path's packages: {found.stderr.strip()[-1500:]}")
    return {
        "versions": json.loads(found.stdout.strip().splitlines()[-1]),
        "env": json.loads((args.work / "env.json").read_text()),
    }


def _see_parent_site(vpy: Path, args: argparse.Namespace) -> None:
    """If this python is itself a venv, ``--system-site-packages`` shows its base's packages, not its own
    (torch): a .pth file in the new venv adds this python's site folders."""
    if subprocess.run([vpy, "-c", "import torch"], capture_output=True).returncode == 0:
        return
    import site

    dirs = [
        p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")) and Path(p).is_dir()
    ]
    dirs += [d for d in site.getsitepackages() if d not in dirs and Path(d).is_dir()]
    target = subprocess.run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(target, PARENT_PTH).write_text("\n".join(dirs) + "\n")
    if subprocess.run([vpy, "-c", "import torch"], capture_output=True).returncode:
        raise SystemExit(f"setup: torch is not importable from {vpy} even with {dirs} on its path: "
                         f"run this script with the python that has torch (this one: {sys.executable})")  # fmt: skip


def _pip(args: argparse.Namespace) -> list:
    """pip of this python acting on the venv (the venv has none: ensurepip may be missing), else uv's."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip", "--python", venv_python(args)]
    if shutil.which("uv"):
        return ["uv", "pip", "--python", venv_python(args)]  # uv pip install takes the same flags used here
    raise SystemExit(
        f"setup: neither `{sys.executable} -m pip` nor `uv` exists: one is needed to install the wheels"
    )


NVIDIA_JSON = '{"file_format_version": "1.0.0", "ICD": {"library_path": "libEGL_nvidia.so.0"}}\n'
VENDOR_DIRS = (
    "/usr/share/glvnd/egl_vendor.d",
    "/etc/glvnd/egl_vendor.d",
    "/usr/local/share/glvnd/egl_vendor.d",
)
NVIDIA_LIB_DIRS = ("/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")


def _egl_env(args: argparse.Namespace) -> dict[str, str]:
    """PYTHONPATH (numba's stand-in when the venv has no numba) and what EGL needs: the glvnd loader
    (libEGL.so.1; the wheelhouse's egl/lib copy when the machine has none) and NVIDIA's vendor file (ours,
    naming libEGL_nvidia.so.0, when none is installed but the library is)."""
    env: dict[str, str] = {}
    vpy = venv_python(args)
    if subprocess.run([vpy, "-c", "import numba"], capture_output=True).returncode:
        env["PYTHONPATH"] = str(NONUMBA)
    lib_dirs = []
    if subprocess.run(
        [vpy, "-c", "import ctypes; ctypes.CDLL('libEGL.so.1')"], capture_output=True
    ).returncode:
        lib_dirs.append(str(args.wheels / "egl/lib"))
    nvidia = [d for d in NVIDIA_LIB_DIRS if Path(d, "libEGL_nvidia.so.0").exists()]
    if nvidia and "/usr/local/nvidia/lib64" in nvidia:
        lib_dirs.append("/usr/local/nvidia/lib64")  # not on the loader's default path
    if lib_dirs:
        env["LD_LIBRARY_PATH"] = ":".join(lib_dirs)
    has_vendor = any(Path(d).is_dir() and any(Path(d).glob("*nvidia*.json")) for d in VENDOR_DIRS)
    if nvidia and not has_vendor:
        path = args.work / "10_nvidia.json"
        path.write_text(NVIDIA_JSON)
        env["__EGL_VENDOR_LIBRARY_FILENAMES"] = str(path)
    return env


# ------------------------------------------------------------------------------------------- render check
RENDER_PROBE = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, ".")
from bench.device.gated_pixels import bench_args
from bench.robot_learning_pixels_gated import arm_config
from ast_robot.envs import make_env
cfg = arm_config("ungated", bench_args(json.loads(sys.argv[1])))
env = make_env(cfg.env, cfg.randomization, seed=0, deploy=cfg.deploy)
obs, _ = env.reset(seed=0)
start = time.perf_counter()
for i in range(20):
    obs, *_ = env.step(np.zeros(env.action_space.shape))
step_ms = (time.perf_counter() - start) / 20 * 1000
out = {"camera_shape": list(obs["camera"].shape), "camera_std": float(obs["camera"].std()), "env_step_ms": round(step_ms, 2)}
if "wrist_camera" in obs:
    out["wrist_std"] = float(obs["wrist_camera"].std())
try:
    from OpenGL import GL
    out["gl_renderer"] = GL.glGetString(GL.GL_RENDERER).decode()
    out["gl_vendor"] = GL.glGetString(GL.GL_VENDOR).decode()
except Exception as e:  # the renderer string is a record, not the check
    out["gl_renderer"] = f"unknown ({type(e).__name__}: {e})"
env.close()
print(json.dumps(out))
"""


def render(args: argparse.Namespace) -> dict:
    """MuJoCo renders the training cameras through EGL (non-constant images); CUDA exists if asked for."""
    vpy = venv_python(args)
    got = subprocess.run([vpy, "-c", RENDER_PROBE, json.dumps(_bench_json(args))], cwd=REPO, env=stage_env(args),
                         capture_output=True, text=True)  # fmt: skip
    if got.returncode:
        last = (got.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"render check: MuJoCo could not render through EGL (MUJOCO_GL=egl): {last[:400]}; it needs "
                         "libEGL.so.1 (glvnd) and a vendor library (libEGL_nvidia.so.0 or Mesa's); env.json: "
                         f"{(args.work / 'env.json').read_text() if (args.work / 'env.json').is_file() else 'none'}")  # fmt: skip
    out = json.loads(got.stdout.strip().splitlines()[-1])
    if out["camera_std"] < 1.0:
        raise SystemExit(f"render check: the camera image is constant (std {out['camera_std']:.3f}): EGL made a "
                         f"context but drew nothing; renderer {out.get('gl_renderer')}")  # fmt: skip
    if args.device.startswith("cuda"):
        cuda = subprocess.run([vpy, "-c", "import torch; assert torch.cuda.is_available()"], env=stage_env(args),
                              capture_output=True, text=True)  # fmt: skip
        if cuda.returncode:
            raise SystemExit(
                f"render check: --device {args.device} but torch.cuda.is_available() is False in the venv"
            )
    return out


# ------------------------------------------------------------------------------------------- data
def collect(args: argparse.Namespace) -> dict:
    """Expert demos, seeds 0 .. episodes + heldout - 1, in --workers processes by seed range, then pooled."""
    total = args.episodes + args.heldout_episodes
    parts_dir = args.work / f"demo_parts_{total}_{args.camera}_{'wrist' if args.wrist else 'nowrist'}"
    cmds, logs, parts = [], [], []
    for i, (first, count) in enumerate(split(total, args.workers)):
        part = parts_dir / f"p{i:02d}"
        parts.append(part)
        if _meta_count(part) == count:
            continue  # done by an earlier, interrupted run
        shutil.rmtree(part, ignore_errors=True)
        cmds.append([venv_python(args), "-m", "ast_robot", "demos", "collect", *COLLECT_FLAGS, "--camera-size",
                     args.camera, args.camera, "--noise", "0.1", "--seed", first, "--episodes", count, "--out", part])  # fmt: skip
        logs.append(args.work / f"logs/collect_p{i:02d}.log")
    run_parallel(cmds, logs, args)
    shutil.rmtree(args.work / "demos", ignore_errors=True)
    run([venv_python(args), REPO / "bench/pool_demos.py", args.work / "demos", *parts], args)
    metas = [json.loads((p / "meta.json").read_text()) for p in parts]
    return {"episodes": total, "expert_successes": sum(m["successes"] for m in metas), "parts": len(parts)}


def _meta_count(folder: Path) -> int:
    meta = folder / "meta.json"
    return len(json.loads(meta.read_text())["files"]) if meta.is_file() else -1


def scenes(args: argparse.Namespace) -> dict:
    """The bench's train.scenes rendered by --workers processes (seed ranges), merged into one scenes_file."""
    parts_dir = args.work / f"scene_parts_{args.camera}_{args.seed}_{'wrist' if args.wrist else 'nowrist'}"
    parts_dir.mkdir(parents=True, exist_ok=True)
    cmds, logs, parts = [], [], []
    for i, (first, count) in enumerate(split(args.scenes, args.workers)):
        part = parts_dir / f"p{i:02d}_{first}_{count}.npz"
        parts.append(part)
        if not part.is_file():
            cmds.append([venv_python(args), Path(__file__), "scenes-part", "--first", first, "--count", count,
                         "--part", part, "--bench-json", json.dumps(_bench_json(args))])  # fmt: skip
            logs.append(args.work / f"logs/scenes_p{i:02d}.log")
    run_parallel(cmds, logs, args)
    run([venv_python(args), Path(__file__), "scenes-merge", "--bench-json", json.dumps(_bench_json(args)),
         "--scenes-file", scenes_file(args), *[a for p in parts for a in ("--part", p)]], args)  # fmt: skip
    return {"scenes": args.scenes, "parts": len(parts), "bytes": scenes_file(args).stat().st_size}


def scenes_file(args: argparse.Namespace) -> Path:
    return args.work / f"scenes_{args.scenes}_{args.camera}.npz"


def scenes_part(first: int, count: int, part: Path, bench: dict) -> None:
    """Scenes ``first .. first + count - 1`` of the bench's (its config's env and seed), written to ``part``."""
    import numpy as np

    from ast_robot.envs import make_env
    from ast_robot.envs.scenes import make_scenes
    from bench.robot_learning_pixels_gated import arm_config

    cfg = arm_config("ungated", bench_args(bench))
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    rows = make_scenes(env, count, seed=cfg.seed + 5_000_000 + first)  # the seeds bc._add_scenes gives them
    env.close()
    tmp = part.with_suffix(".tmp.npz")
    np.savez(tmp, **rows)
    tmp.rename(part)


def scenes_merge(parts: list[Path], out: Path, bench: dict) -> None:
    """The parts in seed order as one scenes file with the meta bc._cached_scenes checks (then checked by it)."""
    import numpy as np

    from ast_robot.config import to_dict
    from ast_robot.envs.scenes import write_scenes
    from bench.robot_learning_pixels_gated import arm_config

    cfg = arm_config("ungated", bench_args(bench))
    loaded = [np.load(p) for p in parts]
    rows = {k: np.concatenate([f[k] for f in loaded]) for k in loaded[0].files}
    if len(next(iter(rows.values()))) != cfg.train.scenes:
        raise SystemExit(
            f"scenes-merge: {len(next(iter(rows.values())))} scenes in the parts, train.scenes is {cfg.train.scenes}"
        )
    want = json.loads(json.dumps({"env": to_dict(cfg.env), "randomization": to_dict(cfg.randomization),
                                  "n": cfg.train.scenes, "seed": cfg.seed + 5_000_000}))  # as bc._cached_scenes  # fmt: skip
    want["env"].pop("max_episode_steps", None)
    write_scenes(out, rows, want)
    from ast_robot.trainers.bc import _cached_scenes

    _cached_scenes(cfg, None, cfg.seed + 5_000_000)  # the bench's own check of the file: raises on a mismatch


# ------------------------------------------------------------------------------------------- the bench
def _bench_json(args: argparse.Namespace) -> dict:
    """What the bench's arguments are made of (passed to worker processes as JSON)."""
    sets = [
        f"env.wrist_camera={str(args.wrist).lower()}",
        f"train.scenes_file={scenes_file(args)}",
        *args.set,
    ]
    return {"demos": str(args.work / "demos"), "episodes": args.episodes, "scenes": args.scenes, "steps": args.steps,
            "camera": args.camera, "seed": args.seed, "out": str(args.work / "run"), "set": sets}  # fmt: skip


def bench_argv(bench: dict) -> list[str]:
    argv = ["--demos", bench["demos"], "--episodes", bench["episodes"], "--scenes", bench["scenes"], "--steps",
            bench["steps"], "--camera", bench["camera"], "--seed", bench["seed"], "--out", bench["out"]]  # fmt: skip
    return [str(a) for a in argv] + [a for kv in bench["set"] for a in ("--set", kv)]


def bench_args(bench: dict) -> argparse.Namespace:
    """The bench's own parsed arguments for ``bench`` (so workers build exactly the arms' config)."""
    from bench.robot_learning_pixels_gated import parse_args

    return parse_args(bench_argv(bench))


def smoke(args: argparse.Namespace) -> dict:
    """The bench's --smoke on --device (its JSON/MD into --out: the device's cost breakdown, before `train`)."""
    log = args.work / "logs/smoke.log"
    run([venv_python(args), "-u", REPO / "bench/robot_learning_pixels_gated.py", "--demos", args.work / "demos", "--smoke",
         "--device", args.device, "--eval-workers", 2, "--out", args.work / "smoke", "--out-dir", args.out,
         "--name", f"{args.name}_smoke", "--set", f"env.wrist_camera={str(args.wrist).lower()}", "--camera", args.camera,
         *[a for kv in args.set for a in ("--set", kv)]], args, log)  # fmt: skip
    rows = json.loads((args.out / f"{args.name}_smoke.json").read_text())["rows"]
    costs = next((r for r in rows if r["arm"] == "cost_breakdown"), {})
    return {"arms_finished": [r["arm"] for r in rows if r.get("finished")], "log": str(log),
            "predicted_speedup_stale": costs.get("predicted_speedup_stale"),
            "forward_backward_full_ms": costs.get("forward_backward_full_ms")}  # fmt: skip


def _gpu_name(args: argparse.Namespace) -> str:
    done = args.work / "done_setup"
    return (
        str(json.loads(done.read_text()).get("versions", {}).get("gpu")) if done.is_file() else "GPU unknown"
    )


def train(args: argparse.Namespace, budget_s: float) -> dict:
    """The three arms on --device, held-out episodes in --eval-workers processes; results into --out."""
    extra = ["--device", args.device, "--eval-workers", args.eval_workers, "--checkpoints", args.checkpoints,
             "--eval-episodes", args.eval_episodes, "--final-episodes", args.final_episodes,
             "--heldout-from", args.episodes, "--heldout-episodes", args.heldout_episodes, "--budget-s", round(budget_s),
             "--name", args.name, "--out-dir", args.out, "--note", f"run by bench/device/gated_pixels.py on {args.device} ({_gpu_name(args)}), {os.cpu_count()} CPUs"]  # fmt: skip
    log = args.out / f"{args.name}.log"
    run([venv_python(args), "-u", REPO / "bench/robot_learning_pixels_gated.py", *bench_argv(_bench_json(args)), *extra],
        args, log)  # fmt: skip
    print(log.read_text()[-2500:], flush=True)
    return {"budget_s": round(budget_s), "log": log.name}


# ------------------------------------------------------------------------------------------- main
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=("all", *STAGES, "scenes-part", "scenes-merge"))
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/gated_pixels_out")),
                   help="results folder (default $OUT)")  # fmt: skip
    p.add_argument(
        "--work", type=Path, default=REPO / "device_work", help="venv, demos, scenes, runs (git-ignored)"
    )
    p.add_argument("--wheels", type=Path, default=REPO / "device_wheels", help="the wheelhouse (git-ignored)")
    p.add_argument(
        "--deadline-s", type=float, default=560, help="`all`: wall seconds for every stage it runs"
    )
    p.add_argument("--until", choices=STAGES, default=STAGES[-1], help="`all`: the last stage to run")
    p.add_argument("--train-reserve-s", type=float, default=120,
                   help="`all`: of the time left for `train`, what data loading + the final evaluation keep")  # fmt: skip
    p.add_argument("--train-budget-s", type=float, default=None, help="`train` alone: the bench's --budget-s")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="collect/scenes processes")
    p.add_argument("--eval-workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--device", default="cuda")
    p.add_argument("--episodes", type=int, default=500, help="training demo episodes (seeds 0..)")
    p.add_argument(
        "--heldout-episodes", type=int, default=40, help="demo episodes after them (perception error)"
    )
    p.add_argument("--scenes", type=int, default=12000)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--camera", type=int, default=96)
    p.add_argument("--no-wrist", dest="wrist", action="store_false", help="without the wrist camera")
    p.add_argument("--checkpoints", type=int, default=5)
    p.add_argument("--eval-episodes", type=int, default=40)
    p.add_argument("--final-episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help=f"config overrides of every arm (default: the plateau run's {PLATEAU_SET})")  # fmt: skip
    p.add_argument("--name", default="robot_learning_pixels_gated_gpu")
    # scenes-part / scenes-merge (worker commands of `scenes`)
    p.add_argument("--first", type=int)
    p.add_argument("--count", type=int)
    p.add_argument("--part", type=Path, action="append")
    p.add_argument("--scenes-file", type=Path)
    p.add_argument("--bench-json")
    args = p.parse_args(argv)
    args.set = PLATEAU_SET if args.set is None else args.set
    return args


def main() -> None:
    args = parse()
    if args.stage == "scenes-part":
        return scenes_part(args.first, args.count, args.part[0], json.loads(args.bench_json))
    if args.stage == "scenes-merge":
        return scenes_merge(args.part, args.scenes_file, json.loads(args.bench_json))
    for folder in (args.out, args.work / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    for stage in STAGES[: STAGES.index(args.until) + 1] if args.stage == "all" else (args.stage,):
        if args.stage == "all" and stage != "train" and done_before(args, stage):  # train: always (new steps)
            print(
                f"stage {stage}: done earlier ({(args.work / f'done_{stage}').read_text()[:200]})", flush=True
            )
            continue
        start = time.perf_counter()
        if stage == "train":
            left = args.deadline_s - (start - began) - args.train_reserve_s
            budget = args.train_budget_s if args.stage == "train" and args.train_budget_s else left
            if budget < 60:
                raise SystemExit(
                    f"train: {budget:.0f} s left of --deadline-s {args.deadline_s:g}: run `train` again"
                )
            extra = train(args, budget)
        else:
            extra = {"setup": setup, "render": render, "collect": collect, "smoke": smoke, "scenes": scenes}[
                stage
            ](args)
        record(args, stage, time.perf_counter() - start, **extra)


if __name__ == "__main__":
    main()
