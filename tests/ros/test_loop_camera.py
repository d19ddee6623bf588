"""The sim-to-real loop's deployment records the camera for the visual gap analysis (issue 21, deliverable 5):
a privileged (tracker-fed) policy sees no camera, yet the twin on simulated time renders its frames at
``gap.camera_rate_hz`` and the recorder writes them, so the loop's bag carries frames the visual analysis reads;
on the nominal twin it names nothing. Without the rate the bag has no frames and the report says so."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ast_robot.records import read_records
from ast_robot.sim2real import deploy_on_twin, twin_camera_rate
from tests.ros.test_pickplace_replay import tracked_checkpoint

pytest.importorskip("rclpy", reason='needs ROS 2 Python packages: pip install "ast-robot[ros]"')

CONFIG = ["--config", "configs/experiments/pickplace_demo.yaml", "--set", "deploy.episode_timeout_s=2.0"]


def deploy(tmp_path, name: str, camera_hz: float) -> tuple:
    folder = tmp_path / name
    bag, records = deploy_on_twin(tmp_path / "policy", CONFIG, "ur5e", None, 2, 0, folder,
                                  int(os.environ["ROS_DOMAIN_ID"]), task="pickplace", record_camera_hz=camera_hz)  # fmt: skip
    return bag, read_records(records)


@pytest.mark.slow  # ~30-60 s on 2 loaded cores: two 2 s episodes in lock-step, then 2 Hz frames re-rendered
def test_the_loops_bag_carries_frames_the_visual_analysis_reads_and_names_nothing(tmp_path, repo_root, monkeypatch):
    from ast_robot.gap.pick import run_visual
    from ast_robot.gap.visual import FLOOR_LEVELS
    from ast_robot.records.bag import read_bag_images

    monkeypatch.chdir(repo_root)
    tracked_checkpoint(tmp_path / "policy")
    bag, real = deploy(tmp_path, "with", 2.0)
    images = read_bag_images(bag)
    # 2 Hz over two 2 s episodes (plus the rest between them): at least 2 a episode, never the twin's 10 Hz
    assert len(images) >= 4, len(images)
    gaps = [b - a for (a, _), (b, _) in zip(images, images[1:])]
    assert min(gaps) >= 1e9 / 3 - 1e6 and abs(np.median(gaps) - 0.5e9) < 0.05e9, gaps  # 2 Hz of simulated time
    visual, note = run_visual(bag, real)
    assert note == "" and visual.n_frames >= 2, note
    assert visual.rms_nominal <= FLOOR_LEVELS and visual.culprits == (), visual.to_dict()


@pytest.mark.slow
def test_without_the_rate_the_bag_has_no_frames_and_the_report_says_skipped(tmp_path, repo_root, monkeypatch):
    from ast_robot.gap.pick import run_visual

    monkeypatch.chdir(repo_root)
    tracked_checkpoint(tmp_path / "policy")
    bag, real = deploy(tmp_path, "without", 0.0)
    visual, note = run_visual(bag, real)
    assert visual is None and note.startswith("skipped"), note


def test_the_twin_renders_only_what_is_read():
    assert twin_camera_rate(camera=False, record_camera_hz=0.0) == ["--camera-rate", "0"]
    assert twin_camera_rate(camera=False, record_camera_hz=2.0) == ["--camera-rate", "2"]
    assert twin_camera_rate(camera=True, record_camera_hz=2.0) == []  # the policy's camera: the YAML's rate
    with pytest.raises(ValueError, match=r"^gap.camera_rate_hz: expected frames per second >= 0"):
        twin_camera_rate(camera=False, record_camera_hz=-1.0)


def test_a_bad_camera_rate_in_the_config_is_refused_in_one_line():
    from ast_robot.config import load_config

    for bad in ("-1", "100"):
        with pytest.raises(Exception, match=r"camera_rate_hz") as err:
            load_config("configs/experiments/pickplace_demo.yaml", [f"gap.camera_rate_hz={bad}"])
        assert "\n" not in str(err.value)
