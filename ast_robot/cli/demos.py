"""`ast-robot demos collect --env ID --episodes N --out DIR`: scripted-expert demonstrations.

The format and its loader are documented in :mod:`ast_robot.envs.demos`.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    """Register `demos collect` and its options."""
    parser = sub.add_parser(name, help="Scripted-expert demonstrations.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    collect = actions.add_parser("collect", help="Roll out the scripted expert and write episodes.")
    collect.add_argument("--env", required=True, help="Env id, e.g. ast_robot/PickPlaceUR5e-v0.")
    collect.add_argument("--episodes", type=int, default=10, help="Episodes to write.")
    collect.add_argument("--out", required=True, help="Output folder.")
    collect.add_argument("--seed", type=int, default=0, help="Seed of the first episode (then +1 each).")
    collect.add_argument("--camera", action="store_true", help="Record the camera observation (--camera-size).")
    collect.add_argument("--camera-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                         help="Camera image height and width in pixels (default: env.camera_size's, 64 64).")
    collect.add_argument("--instruction", action="store_true", help="Record the language instruction.")
    collect.add_argument("--wrist-camera", action="store_true",
                         help="Pick-and-place: render the wrist camera (env.wrist_camera), for a --policy student "
                              "that reads it; episodes record the wrist image (wrist_camera) and the goals' place in it.")  # fmt: skip
    collect.add_argument("--observation", choices=("privileged", "deploy"), default="privileged",
                         help="Pick-and-place observation layout; `deploy` (camera + instruction + proprioception, "
                              "no object positions) implies --camera and --instruction.")  # fmt: skip
    collect.add_argument("--objects", type=int, default=None, help="Pick-and-place: cubes on the table "
                         "(default: env.n_objects's default).")  # fmt: skip
    collect.add_argument("--pads", type=int, default=None, help="Pick-and-place: place pads (default: env.n_pads's).")
    collect.add_argument("--visual", action="store_true",
                         help="Visual randomization (lights, colours, camera jitter, image noise) on top of "
                              "--randomization.")  # fmt: skip
    collect.add_argument("--randomization", default="default",
                         help="Randomization preset name or YAML path; `none` for the nominal model.")  # fmt: skip
    collect.add_argument("--deploy-pipeline", action="store_true",
                         help="Run every step through the deployment's command path (env.deploy_pipeline: the "
                              "node's 125 Hz ticks, the safety module, the robot's controller per "
                              "configs/deploy/<robot>.yaml), as a student that trains as it deploys must be "
                              "collected, driven and labelled.")  # fmt: skip
    collect.add_argument("--max-episode-steps", type=int, default=None,
                         help="Control steps per episode (default: env.max_episode_steps's, 50); through "
                              "--deploy-pipeline the arm moves as the deployment's limits let it, and the "
                              "pick-and-place expert needs up to ~90 steps (configs/experiments/"
                              "pickplace_ur5e_pixels_bc.yaml).")  # fmt: skip
    collect.add_argument("--only-success", action="store_true", help="Skip failed episodes.")
    collect.add_argument("--noise", type=float, default=0.0,
                         help="DART-style noise std (action units) on the executed TCP motion; the clean "
                              "expert action is recorded.")  # fmt: skip
    collect.add_argument("--policy", default=None, metavar="RUN",
                         help="DAgger: a trained BC run (or its policy/ checkpoint) drives, the scripted expert "
                              "labels every visited state; failed episodes are kept (their labels are good).")  # fmt: skip
    collect.add_argument("--replay", default=None, metavar="DIR",
                         help="Re-run DIR's episodes (their seeds and executed actions; --episodes at most its count) "
                              "in this env, the expert labelling the states visited: old demos gain a new "
                              "observation (e.g. --wrist-camera's image).")  # fmt: skip
    collect.add_argument("--beta", type=float, default=0.0,
                         help="With --policy: probability per step of executing the expert's action instead.")
    collect.add_argument("--append", action="store_true",
                         help="Add the episodes to an existing demo folder of the same env (DAgger aggregates).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect ``--episodes`` demonstrations into ``--out`` and write their ``meta.json``."""
    from rich.console import Console

    from ast_robot.config import EnvConfig, RandomizationConfig, VisualRandomizationConfig, to_dict
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import write_meta
    from ast_robot.envs.experts import expert_for
    from ast_robot.runlog import progress

    if args.episodes <= 0:
        raise ValueError(f"--episodes must be > 0, got {args.episodes}")
    deploy = args.observation == "deploy"
    env_cfg = EnvConfig(id=args.env, camera=args.camera or deploy, instruction=args.instruction or deploy,
                        observation=args.observation, wrist_camera=args.wrist_camera,
                        deploy_pipeline=args.deploy_pipeline,
                        **{k: v for k, v in (("n_objects", args.objects), ("n_pads", args.pads),
                                             ("camera_size", tuple(args.camera_size or ()) or None),
                                             ("max_episode_steps", args.max_episode_steps)) if v is not None})  # fmt: skip
    visual = VisualRandomizationConfig(enabled=args.visual)
    rand = (
        RandomizationConfig(enabled=False)
        if args.randomization == "none"
        else RandomizationConfig(preset=args.randomization, visual=visual)
    )
    env = make_env(env_cfg, rand, seed=args.seed)
    earlier = _earlier(args)
    if args.policy and args.replay:
        raise ValueError("--policy and --replay both choose the executed actions: give one")
    act = _student(args.policy) if args.policy else None
    with progress(f"demos {args.env}", args.episodes) as advance:
        files, successes, tried = _collect(env, expert_for(env), args, advance, act, first=len(earlier["files"]))
    env.close()
    this = {"seed": args.seed, "noise": args.noise, "policy": args.policy, "replay": args.replay, "beta": args.beta if args.policy else None,
            "episodes": len(files), "attempts": tried, "successes": successes, "success_rate": successes / tried}  # fmt: skip
    runs = [*earlier.get("collections", []), this]
    write_meta(args.out, {"env_id": args.env, "env_config": to_dict(env_cfg), "randomization": to_dict(env.unwrapped.rand_cfg),
                          **this, "episodes": len(earlier["files"]) + len(files), "collections": runs,
                          "files": earlier["files"] + files})  # fmt: skip
    who = "student (DAgger, expert-labelled)" if args.policy else f"replay of {args.replay}" if args.replay else "expert"
    Console().print(f"wrote {len(files)} episodes to {args.out} ({who} success {successes}/{tried})")
    return 0


def _earlier(args: argparse.Namespace) -> dict:
    """The existing folder's meta with --append (same env id required), else an empty one."""
    from pathlib import Path

    from ast_robot.envs.demos import read_meta
    from ast_robot.fileio import BadFile

    if not args.append or not (Path(args.out) / "meta.json").is_file():
        return {"files": []}
    meta = read_meta(args.out)
    if meta["env_id"] != args.env:
        raise BadFile(Path(args.out) / "meta.json", f"holds demonstrations of {meta['env_id']}, not {args.env}",
                      "--append to a folder of the same env")  # fmt: skip
    if "collections" not in meta:  # a folder of one plain collection: keep its figures as the first entry
        meta["collections"] = [{k: meta.get(k) for k in ("seed", "noise", "episodes", "attempts", "successes", "success_rate")}]
    return meta


def _student(path: str):
    """``act`` of a BC run folder (its ``policy/``) or of a policy checkpoint folder."""
    from pathlib import Path

    from ast_robot.core.checkpoint import POLICY_EXPECTED
    from ast_robot.fileio import reading
    from ast_robot.policies.policy import PolicyBase
    from ast_robot.run_layout import POLICY_DIR

    folder = Path(path) / POLICY_DIR if (Path(path) / POLICY_DIR).is_dir() else Path(path)
    with reading(folder, POLICY_EXPECTED):
        return PolicyBase.load(folder).act


def _collect(env, expert, args: argparse.Namespace, advance, act=None, first: int = 0) -> tuple[list[str], int, int]:
    """Run episodes from seed ``args.seed`` on (``act``: DAgger's student drives); returns (file names, successes,
    attempts). Files are numbered from ``first`` (after an --append folder's)."""
    from ast_robot.envs.dagger import dagger_episode
    from ast_robot.envs.demos import run_episode, write_episode
    from ast_robot.evaluation import reset_episode

    replays = _replays(args.replay, args.episodes, args.env, env.unwrapped.cfg) if args.replay else None
    files, successes, tried = [], 0, 0
    while len(files) < args.episodes:
        if tried >= 10 * args.episodes or (replays is not None and tried >= len(replays)):  # never loop forever
            raise ValueError(f"--only-success: only {len(files)} successes in {tried} episodes; giving up")
        seed = args.seed + tried
        if replays is not None:
            episode = _replayed(env, expert, replays[tried])
        else:
            reset_episode(act)  # a student that keeps state across act() calls starts each episode afresh
            episode = (run_episode(env, expert, seed, noise=args.noise) if act is None
                       else dagger_episode(env, expert, act, seed, beta=args.beta, noise=args.noise))  # fmt: skip
        tried += 1
        successes += bool(episode["success"])
        if args.only_success and not episode["success"]:
            continue
        name = f"episode_{first + len(files):05d}.npz"
        write_episode(f"{args.out}/{name}", episode)
        files.append(name)
        advance(success_rate=successes / tried)
    return files, successes, tried


# What makes a replayed episode another episode: its table (cubes, pads) and how an action moves the arm.
REPLAY_SAME = ("n_objects", "n_pads", "deploy_pipeline")


def _replays(folder: str, episodes: int, env_id: str, env_cfg: Any) -> list:
    """The first ``episodes`` file paths of ``folder`` (a demo folder of this env id and table), checked up front."""
    from pathlib import Path

    from ast_robot.envs.demos import read_meta
    from ast_robot.fileio import BadFile

    meta = read_meta(folder)
    if meta["env_id"] != env_id:
        raise BadFile(Path(folder) / "meta.json", f"holds demonstrations of {meta['env_id']}, not {env_id}",
                      "--replay of a folder of the same env")  # fmt: skip
    made = meta.get("env_config", {})
    for key in (k for k in REPLAY_SAME if k in made and made[k] != getattr(env_cfg, k)):
        flag = {"n_objects": "--objects", "n_pads": "--pads", "deploy_pipeline": "--deploy-pipeline"}[key]
        raise BadFile(Path(folder) / "meta.json", f"env_config.{key} is {made[key]!r}, this env's {getattr(env_cfg, key)!r}: "
                      "its episodes would replay on another table or arm", f"{flag} as the folder was made")  # fmt: skip
    if len(meta["files"]) < episodes:
        raise BadFile(Path(folder) / "meta.json", f"holds {len(meta['files'])} episodes, --episodes asks {episodes}",
                      "--episodes at most the --replay folder's count")  # fmt: skip
    return [Path(folder) / name for name in meta["files"][:episodes]]


def _replayed(env, expert, path):
    """One recorded episode re-run from its seed with its executed actions, the expert labelling every state."""
    from ast_robot.envs.dagger import replay_driver
    from ast_robot.envs.demos import read_episode, run_episode

    old = read_episode(path)
    actions = old.arrays.get("executed_action", old.arrays["action"])
    return run_episode(env, expert, int(old.arrays["seed"]), driver=replay_driver(actions))
