"""`ast-robot sim2real --start-policy RUN --demo-pool DIR` (issue 21): round 0 deploys a trained pixel student as
it is (evaluated in sim, not trained: the round's policy is the start policy's weights) and the next round
fine-tunes it on the pool (the given demonstrations + the round's own). A start policy trained on another env
(contract) or network, and demonstrations of another env, are refused in one line before anything runs.
Plumbing only: a tiny pixel run (one demonstration, two steps), one twin episode per round."""

from __future__ import annotations

import dataclasses
import os
import types

import pytest
import torch

from tests.ros.test_pickplace_replay import tracked_checkpoint

pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')

PIXELS = "configs/experiments/pickplace_ur5e_pixels_bc.yaml"
TINY = ["train.n_demos=1", "train.steps=2", "train.eval_episodes=1", "train.scenes=0", "train.finetune_demos=1",
        "train.finetune_steps=2", "policy.hidden_sizes=[32]", "train.log_every=1"]  # fmt: skip


def tiny_pixel_run(root, sets=TINY):
    """A pixel student trained two steps on one expert demonstration: its run folder."""
    from ast_robot.config import load_config
    from ast_robot.trainers.bc import train_bc

    cfg = load_config(PIXELS, list(sets))
    cfg = dataclasses.replace(cfg, name="start", run_root=str(root))
    train_bc(cfg, show_progress=False)
    return root / "start"


def demo_folder(folder, sets=TINY, n=1):
    """``n`` expert demonstrations of the pixel experiment's env, as `ast-robot demos collect` writes them."""
    from ast_robot.config import load_config
    from ast_robot.envs import make_env
    from ast_robot.envs.demos import write_episode, write_meta
    from ast_robot.trainers.bc import collect_episodes

    cfg = load_config(PIXELS, list(sets))
    env = make_env(cfg.env, cfg.randomization, seed=cfg.seed, deploy=cfg.deploy)
    episodes = collect_episodes(env, n, seed=7_000_000)
    env.close()
    folder.mkdir(parents=True)
    for i, ep in enumerate(episodes):
        write_episode(folder / f"ep{i}.npz", ep.arrays)
    write_meta(folder, {"env_id": cfg.env.id, "files": [f"ep{i}.npz" for i in range(n)]})
    return folder


def weights(folder):
    from ast_robot.policies.policy import PolicyBase

    return PolicyBase.load(folder).state_dict()


def loop_args(tmp_path, **kw):
    return types.SimpleNamespace(overrides=list(TINY), out=str(tmp_path / "loop"), rounds=2, hidden=None,
                                 real_episodes=1, domain=int(os.environ["ROS_DOMAIN_ID"]), **kw)  # fmt: skip


def test_start_policies_and_pools_of_another_env_or_network_are_refused_in_one_line(tmp_path, repo_root, monkeypatch):
    from ast_robot.config import load_config
    from ast_robot.sim2real import check_start_policy, load_demo_pool

    monkeypatch.chdir(repo_root)
    cfg = load_config(PIXELS, TINY)
    tracked_checkpoint(tmp_path / "tracked")  # the privileged (tracker-fed) pick-and-place layout: no camera
    with pytest.raises(ValueError, match=r"^--start-policy .*tracked: its contract's \w+ is .*, the experiment's env "
                                         r"\(ast_robot/PickPlaceUR5e-v0\) has") as err:  # fmt: skip
        check_start_policy(tmp_path / "tracked", cfg)
    assert "\n" not in str(err.value)
    run = tiny_pixel_run(tmp_path / "runs")
    assert check_start_policy(run, cfg) == run / "policy"  # a run folder or its policy/
    wider = load_config(PIXELS, [*TINY, "policy.hidden_sizes=[64]"])
    with pytest.raises(ValueError, match=r"its network is not the experiment's policy section") as err:
        check_start_policy(run, wider)
    assert "\n" not in str(err.value)
    reach = tmp_path / "reach_demos"
    demo_folder(tmp_path / "pool")
    (reach).mkdir()
    meta = (tmp_path / "pool" / "meta.json").read_text().replace("PickPlaceUR5e", "ReachUR5e")
    (reach / "meta.json").write_text(meta)
    with pytest.raises(Exception, match=r"recorded in ast_robot/ReachUR5e-v0, this run trains") as err:
        load_demo_pool(reach, cfg)
    assert "\n" not in str(err.value)
    assert len(load_demo_pool(tmp_path / "pool", cfg)) == 1


@pytest.mark.slow  # ~2-4 min on 2 loaded cores: a tiny pixel run, then two rounds of one 4 s twin episode each
def test_round_0_deploys_the_start_policy_as_given_and_round_1_fine_tunes_it_on_the_pool(tmp_path, repo_root,
                                                                                        monkeypatch):  # fmt: skip
    from ast_robot.records import read_records
    from ast_robot.sim2real import sim2real

    monkeypatch.chdir(repo_root)
    run = tiny_pixel_run(tmp_path / "runs")
    pool = demo_folder(tmp_path / "pool")
    console = types.SimpleNamespace(rule=lambda *a: None, print=lambda *a: None)
    before = torch.get_num_threads()
    try:
        results = sim2real(PIXELS, loop_args(tmp_path, start_policy=str(run), demo_pool=str(pool)), console)
    finally:
        torch.set_num_threads(before)
    first, second = results
    assert first.demos == 0 and first.train_samples == 0.0  # deployed as given: no training in round 0
    start, deployed, tuned = weights(run / "policy"), weights(first.folder / "policy"), weights(second.folder / "policy")
    assert all(torch.equal(start[k], deployed[k]) for k in start)
    assert any(not torch.equal(start[k], tuned[k]) for k in start)  # round 1 fine-tuned it
    assert second.demos == 2  # the pool's one + round 1's train.finetune_demos
    for r in results:  # the pixel student ran on the twin: one real record per round, the camera seen
        assert len(read_records(r.folder / "real")) == 1
        assert "image rejected" not in (r.folder / "logs" / "deploy.log").read_text()
