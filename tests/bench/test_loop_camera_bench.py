"""bench/loop_camera's goals on null cases: a nominal loop that names a look fails, a visual twin whose truth
is not first fails, a camera that doubles the deployment's wall-clock or changes one outcome fails."""

from __future__ import annotations

from bench.loop_camera import goals


def loop(named: list, truth: list = (), ranked: list | None = None, hidden: dict | None = None) -> dict:
    return {"kind": "loop", "hidden": hidden or ({"light_scale": 0.45} if truth else {}), "visual_ran": True,
            "visual_named": named, "visual_truth": list(truth),
            "visual_true_first": bool(truth) and bool(ranked) and ranked[0] in truth}  # fmt: skip


def deploy(hz: float, wall: float, errors: tuple = (1.0, 2.0)) -> dict:
    return {"kind": "deploy", "twin": "nominal", "camera_hz": hz, "deploy_wall_s": wall,
            "final_errors_mm": list(errors), "joints_digest": 1.0}  # fmt: skip


def met(rows: list, fragment: str) -> bool | None:
    return next(g for g in goals(rows) if fragment in g["name"])["met"]


def test_the_nominal_loop_passes_only_when_nothing_is_named():
    assert met([loop([])], "names nothing") is True
    assert met([loop(["light_intensity"])], "names nothing") is False


def test_a_visual_twin_passes_only_with_its_truth_first():
    assert met([loop(["light_intensity"], ["light_intensity"], ["light_intensity"])], "ranked first") is True
    assert met([loop(["camera_pose"], ["light_intensity"], ["camera_pose", "light_intensity"])], "ranked first") is False


def test_the_camera_cost_and_identity_goals():
    rows = [deploy(0.0, 20.0), deploy(2.0, 21.0)]
    assert met(rows, "extra deployment") is True and met(rows, "identical") is True
    assert met([deploy(0.0, 20.0), deploy(2.0, 40.0)], "extra deployment") is False
    assert met([deploy(0.0, 20.0), deploy(2.0, 20.0, (1.0, 2.5))], "identical") is False
