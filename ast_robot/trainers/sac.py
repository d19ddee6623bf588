"""Reinforcement learning of the robot tasks with SB3 SAC (+ HerReplayBuffer) and gated replay: the thin adapter
from an experiment config to SB3 (the gated algorithm, the features extractor and loading for acting live in
:mod:`ast_robot.integrations.sb3`; the files a run holds in :mod:`ast_robot.run_layout`).

``gate.enabled: true`` trains :class:`~ast_robot.integrations.sb3.gated_sac.GatedSAC` (the sample gate uses the
experiment's ``gate`` section; the step gate keeps ``gate.sac.step_rate`` of the gradient steps);
otherwise plain SB3 SAC with the same network, buffer and seed, the ungated baseline.
A :class:`SuccessTracker` evaluates every ``train.eval_every`` env steps and records env steps,
gradient steps and training wall-clock (evaluation time excluded) at each evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ast_robot.config.gate import is_gated
from ast_robot.trainers import TRAINERS


def _sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError as err:
        raise ImportError('SAC training needs stable-baselines3: pip install "ast-robot[sb3]"') from err
    return stable_baselines3


def build_sac(cfg: Any, env: Any, physical_weight: Any = None) -> Any:
    """SAC or GatedSAC for the experiment (HER for goal-conditioned envs when ``train.her``)."""
    sb3 = _sb3()
    from stable_baselines3 import HerReplayBuffer

    from ast_robot.integrations.sb3.features import policy_kwargs

    tc = cfg.train
    kwargs: dict[str, Any] = dict(
        learning_rate=lr_schedule(tc.lr, tc.lr_end_fraction), batch_size=tc.batch_size, gamma=tc.gamma, learning_starts=tc.learning_starts,
        buffer_size=min(tc.buffer_size, tc.steps), seed=cfg.seed, device="cpu" if tc.device == "auto" else tc.device,
        gradient_steps=tc.gradient_steps, tau=tc.tau, ent_coef=_ent_coef(tc.ent_coef),
        policy_kwargs=policy_kwargs(cfg), verbose=0,
    )  # fmt: skip
    if tc.her:
        kwargs.update(replay_buffer_class=HerReplayBuffer,
                      replay_buffer_kwargs={"n_sampled_goal": tc.n_sampled_goal,
                                            "goal_selection_strategy": tc.goal_selection})  # fmt: skip
    if not is_gated(cfg):
        return _silent(sb3.SAC("MultiInputPolicy", env, **kwargs))
    from ast_robot.integrations.sb3.gated_sac import GatedSAC, default_step_gate

    gs = cfg.gate.sac
    return _silent(GatedSAC("MultiInputPolicy", env, sample_gate=cfg.gate, step_gate=default_step_gate(gs.step_rate),
                            significance=cfg.significance, physical_weight=physical_weight,
                            temperature_every_step=gs.temperature_every_step, target_every_step=gs.target_every_step,
                            candidate_factor=gs.candidate_factor, stored_scores=gs.stored_scores, **kwargs))  # fmt: skip


def _silent(model: Any) -> Any:
    """The model with a logger that writes nothing: SB3's default logger makes an empty ``SB3-<time>`` folder
    in the system temp folder at every ``learn()``, one per training run left behind. The run's own scalars
    go to the run folder (``RunDir.scalars``)."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def lr_schedule(lr: float, end_fraction: float) -> float | Callable[[float], float]:
    """SB3's ``learning_rate``: ``lr`` (end_fraction 1) or a linear decay to ``lr * end_fraction``.

    SB3 calls the schedule with the remaining progress, 1 at the first env step and 0 at the last."""
    if end_fraction >= 1.0:
        return lr
    return lambda remaining: lr * (end_fraction + (1.0 - end_fraction) * remaining)


def _ent_coef(text: str) -> str | float:
    """``train.ent_coef`` as SB3 takes it: ``auto`` / ``auto_<init>`` stay strings, numbers become floats."""
    if text == "auto" or text.startswith("auto_"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"train.ent_coef {text!r}: use 'auto', 'auto_<initial value>' or a number") from None


# ------------------------------------------------------------------------------ observation scaling
def make_vec_env(cfg: Any) -> Any:
    """The training env as SB3 sees it: Monitor -> DummyVecEnv (-> VecNormalize of the float observations)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from ast_robot.envs import make_env

    env = Monitor(make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy))
    venv = DummyVecEnv([lambda: env])
    if not cfg.train.normalize_obs:
        return venv
    keys = [k for k, space in env.observation_space.spaces.items() if space.dtype != np.uint8]  # not pixels/bytes
    return VecNormalize(venv, norm_obs=True, norm_reward=False, norm_obs_keys=keys, gamma=cfg.train.gamma)


def save_obs_norm(venv: Any, path: Path) -> Path | None:
    """Running mean/variance of each normalized observation key as JSON (None: no normalization)."""
    from stable_baselines3.common.vec_env import VecNormalize

    from ast_robot.fileio import atomic_write_json

    if not isinstance(venv, VecNormalize):
        return None
    stats = {k: {"mean": venv.obs_rms[k].mean, "var": venv.obs_rms[k].var} for k in venv.norm_obs_keys}
    return atomic_write_json(path, {"clip_obs": venv.clip_obs, "epsilon": venv.epsilon, "stats": stats})


def live_normalizer(venv: Any) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The training env's current normalization (its statistics keep moving while it trains)."""
    from stable_baselines3.common.vec_env import VecNormalize

    return venv.normalize_obs if isinstance(venv, VecNormalize) else (lambda obs: obs)


def gradient_steps(model: Any) -> int:
    """Gradient steps actually taken (GatedSAC skips some of SAC's scheduled updates)."""
    counts = getattr(model, "gate_counts", None)
    return int(counts["steps_trained"]) if counts is not None else int(model._n_updates)


def make_tracker(eval_env: Any, every: int, episodes: int, seed: int, target: float = 0.9,
                 stop_at_target: bool = False, normalize: Any = None,
                 on_best: Callable[[dict[str, float]], Any] | None = None):  # fmt: skip
    """A SB3 callback that records success, env steps, gradient steps and training wall-clock.

    ``normalize(obs)`` maps raw observations to the model's inputs (the training VecNormalize);
    ``on_best(row)`` is called at each evaluation at least as good as every earlier one (keeps the best checkpoint;
    its time counts as evaluation time, not training).
    """
    normalize = normalize or (lambda obs: obs)
    from stable_baselines3.common.callbacks import BaseCallback

    from ast_robot.evaluation import evaluate

    class SuccessTracker(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, float]] = []
            self.eval_seconds = 0.0
            self.best = -1.0
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps % every:
                return True
            tick = time.perf_counter()
            train_wall = tick - self.start - self.eval_seconds  # evaluation time is not training time
            act = lambda obs: self.model.predict(normalize(obs), deterministic=True)[0]  # noqa: E731
            rate = evaluate(eval_env, act, episodes, seed=seed).success_rate
            row = {"env_steps": self.num_timesteps, "gradient_steps": gradient_steps(self.model),
                   "train_wall_s": train_wall, "success_rate": rate}  # fmt: skip
            self.history.append(row)
            # >=: of equal evaluations the later model keeps the best (it trained on more data; FR3's first
            # 100%-of-50 model, at 5k env steps, scored 0.99 on 100 held-out episodes, the 30k one 1.0)
            if on_best is not None and rate >= self.best:
                self.best = rate
                on_best({**row, "episodes": episodes})
            self.eval_seconds += time.perf_counter() - tick
            self.logger.record("eval/success_rate", rate)
            return not (stop_at_target and rate >= target)

    return SuccessTracker()


def first_reaching(history: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first evaluation row whose success rate reached ``target`` (None if none did)."""
    return next((row for row in history if row["success_rate"] >= target), None)


@TRAINERS.register("sac")
def train_sac(cfg: Any, resume: str | None = None, stop_at_target: bool = False,
              show_progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Train SAC or GatedSAC; returns final metrics and the evaluation history.

    The run directory gets ``config.yaml`` (so `ast-robot eval RUN_DIR` works), ``sac.zip`` and, with
    ``train.normalize_obs``, ``obs_norm.json`` (the observation statistics acting needs), ``contract.json``
    (the deployment contract, :mod:`ast_robot.robot.contract`); with
    ``train.keep_best``, ``best/`` holds the same pair from the best periodic evaluation
    (:mod:`~ast_robot.trainers.best_checkpoint`). The returned success is the final model's.
    """
    from ast_robot.envs import make_env
    from ast_robot.run_layout import NORM_FILE, SAC_FILE
    from ast_robot.runlog import RunDir
    from ast_robot.trainers.best_checkpoint import clear_best
    from ast_robot.trainers.common import contract_of, evaluate_run, write_contract

    if resume:
        raise ValueError("train.type 'sac' resumes from sac.zip through SB3; --resume is not supported for it")
    tc = cfg.train
    run = RunDir(cfg)  # writes config.yaml atomically, as BC runs do
    clear_best(run.path)
    venv = make_vec_env(cfg)
    eval_env = make_env(cfg.env, cfg.randomization, seed=cfg.seed + 1, deploy=cfg.deploy)
    model = build_sac(cfg, venv)
    normalize = live_normalizer(venv)
    contract = contract_of(eval_env)  # what deploying this run needs (ast_robot.robot.contract)
    on_best = _best_keeper(run.path, model, venv, contract) if tc.keep_best else None
    tracker = make_tracker(eval_env, tc.eval_every, tc.eval_episodes, seed=cfg.seed + 3_000_000,
                           stop_at_target=stop_at_target, normalize=normalize, on_best=on_best)  # fmt: skip
    model.learn(tc.steps, callback=tracker)  # show_progress is accepted for the CLI; SB3's bar needs tqdm
    model.save(run.path / SAC_FILE)
    save_obs_norm(venv, run.path / NORM_FILE)
    write_contract(run.path, contract)
    for row in tracker.history:
        run.scalars({"success_rate": row["success_rate"], "gradient_steps": row["gradient_steps"]},
                    int(row["env_steps"]), prefix="eval/")  # fmt: skip
    run.close()
    act = lambda obs: model.predict(normalize(obs), deterministic=True)[0]  # noqa: E731
    metrics: dict[str, Any] = evaluate_run(cfg, run.path, act, episodes=tc.eval_episodes, env=eval_env)
    metrics.update(gradient_steps=gradient_steps(model), env_steps=model.num_timesteps, history=tracker.history,
                   gate=dict(getattr(model, "gate_counts", {})))  # fmt: skip
    venv.close(), eval_env.close()
    return metrics


def _best_keeper(run_dir: Path, model: Any, venv: Any, contract: Any) -> Callable[[dict[str, float]], Path]:
    """``on_best(row)``: the model, its current observation statistics and the run's deployment contract
    become the run's best."""
    from ast_robot.run_layout import NORM_FILE, SAC_FILE
    from ast_robot.trainers.best_checkpoint import save_best
    from ast_robot.trainers.common import write_contract

    def write(folder: Path) -> None:
        model.save(folder / SAC_FILE)
        save_obs_norm(venv, folder / NORM_FILE)
        write_contract(folder, contract)

    return lambda row: save_best(run_dir, row, write)

