"""`demos collect --deploy-pipeline --max-episode-steps N`: episodes collected as the deployment moves the arm."""

from __future__ import annotations

import numpy as np

import ast_robot  # noqa: F401  (registers the ids)
from ast_robot.cli import main
from ast_robot.envs.demos import load_demos, read_meta

ENV = "ast_robot/PickPlaceUR5e-v0"
TCP = slice(12, 15)  # proprio: 2n joint entries (n = 6), then the TCP position


def _collect(tmp_path, name: str, *flags: str):
    out = tmp_path / name
    assert main(["demos", "collect", "--env", ENV, "--episodes", "1", "--seed", "5", "--out", str(out), *flags]) == 0
    (episode,) = load_demos(out, env_id=ENV)
    return read_meta(out)["env_config"], episode


def test_pipeline_episodes_move_the_arm_as_the_deployment_does(tmp_path):
    plain_cfg, plain = _collect(tmp_path, "plain")
    piped_cfg, piped = _collect(tmp_path, "piped", "--deploy-pipeline", "--max-episode-steps", "60")
    assert plain_cfg["deploy_pipeline"] is False and plain_cfg["max_episode_steps"] == 50 and len(plain) == 50
    assert piped_cfg["deploy_pipeline"] is True and piped_cfg["max_episode_steps"] == 60 and len(piped) == 60
    # Same table and start: equal up to sensor noise (the pipeline env's tracker sample draws its own noise first,
    # so the observation's noise draws differ; another table differs by centimetres)
    np.testing.assert_allclose(plain.arrays["observation"][0], piped.arrays["observation"][0], rtol=0, atol=5e-3)
    # The expert asks for full-speed steps from the start; the deployment's acceleration and speed limits ramp
    # the arm up (the plain step moves the servo target a whole max_ee_step at once).
    first = lambda ep: np.linalg.norm(np.diff(ep.arrays["observation"][:6, TCP], axis=0), axis=1).max()  # noqa: E731
    assert first(piped) < 0.5 * first(plain), (first(piped), first(plain))
