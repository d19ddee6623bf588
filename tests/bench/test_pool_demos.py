"""bench/pool_demos.py: demo folders of parallel collectors pooled into one that training reads."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.cli import main
from ast_robot.envs.demos import load_demos, read_meta
from bench.pool_demos import pool

ENV = "ast_robot/PickPlaceUR5e-v0"
COMMON = ["demos", "collect", "--env", ENV, "--observation", "deploy", "--camera-size", "32", "32", "--pads", "2"]


def _collect(out, episodes, seed, objects="2"):
    assert main([*COMMON, "--objects", objects, "--episodes", str(episodes), "--seed", str(seed), "--out", str(out)]) == 0
    return out


def test_the_pool_holds_every_source_episode_in_order_and_refuses_another_env(tmp_path):
    a, b = _collect(tmp_path / "a", 2, 0), _collect(tmp_path / "b", 1, 100)
    meta = pool(tmp_path / "pool", [a, b])
    episodes = load_demos(tmp_path / "pool", env_id=ENV)
    sources = load_demos(a, env_id=ENV) + load_demos(b, env_id=ENV)
    assert len(episodes) == meta["episodes"] == 3 and read_meta(tmp_path / "pool")["episodes"] == 3
    for got, want in zip(episodes, sources):
        assert set(got.arrays) == set(want.arrays)
        np.testing.assert_array_equal(got.arrays["camera"], want.arrays["camera"])
    assert [c["source"] for c in meta["collections"]] == [str(a), str(b)]
    single = pool(tmp_path / "single", [a])  # null case: one folder pools to itself
    assert single["episodes"] == 2 and len(load_demos(tmp_path / "single", env_id=ENV)) == 2
    other = _collect(tmp_path / "three", 1, 200, objects="3")
    with pytest.raises(ValueError, match=r"three/meta.json: env_config differs from .*a's; pool folders of one env only"):
        pool(tmp_path / "bad", [a, other])
