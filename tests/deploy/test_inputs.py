"""Joint-state and image checks: name matching, hostile arrays and stamps, image encodings."""

from __future__ import annotations

import numpy as np
import pytest

from ast_robot.deploy.inputs import JointStateChecker, Rejected, check_image, resize_nearest

NAMES = ("a", "b", "c")


def test_permuted_names_are_reordered_and_extra_joints_ignored():
    chk = JointStateChecker(NAMES)
    r = chk.check(["finger", "c", "a", "b"], [9.0, 3.0, 1.0, 2.0], [0.0, 0.3, 0.1, 0.2], 1.0, now_s=1.0)
    np.testing.assert_array_equal(r.positions, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(r.velocities, [0.1, 0.2, 0.3])


@pytest.mark.parametrize("names,pos,stamp,reason", [
    (["a", "b"], [0.0, 0.0], 1.0, "lacks joints"),
    (["a", "b", "x"], [0.0] * 3, 1.0, "lacks joints"),
    (["a", "b", "c"], [0.0, 0.0], 1.0, "3 names but 2 positions"),
    (["a", "a", "b", "c"], [0.0] * 4, 1.0, "repeats"),
    (["a", "b", "c"], [0.0, np.nan, 0.0], 1.0, "non-finite positions for \\['b'\\]"),
    (["a", "b", "c"], [0.0, 0.0, -np.inf], 1.0, "non-finite"),
    (["a", "b", "c"], [0.0] * 3, 100.0, "in the future"),
    (["a", "b", "c"], [0.0] * 3, np.nan, "not a valid time"),
    ([f"j{i}" for i in range(1000)], [0.0] * 1000, 1.0, "too large"),
    ([], [], 1.0, "lacks joints"),
])  # fmt: skip
def test_bad_joint_states_are_rejected_with_reason(names, pos, stamp, reason):
    with pytest.raises(Rejected, match=reason):
        JointStateChecker(NAMES).check(names, pos, [], stamp, now_s=1.0)


def test_checker_is_stateless_about_stamp_order_and_accepts_unstamped():
    """Stamp order is judged against the last *trusted* state by the safety monitor: a stray publisher's
    later stamp seen here must not make the driver's next state look out of order."""
    chk = JointStateChecker(NAMES)
    chk.check(NAMES, [0.0] * 3, [], 2.0, now_s=2.0)
    assert chk.check(NAMES, [0.0] * 3, [], 1.9, now_s=2.0).stamp_s == 1.9
    assert chk.check(NAMES, [0.0] * 3, [], 0.0, now_s=2.0).stamp_s == 0.0


def test_rejections_carry_a_reason_key_for_counting():
    with pytest.raises(Rejected) as err:
        JointStateChecker(NAMES).check(NAMES, [0.0, np.nan, 0.0], [], 1.0, now_s=1.0)
    assert err.value.key == "non-finite"


def test_image_encodings_and_sizes():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(check_image("rgb8", 2, 3, 9, rgb.tobytes()), rgb)
    np.testing.assert_array_equal(check_image("bgr8", 2, 3, 9, rgb[:, :, ::-1].tobytes()), rgb)
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    np.testing.assert_array_equal(check_image("rgb8", 2, 3, 12, padded.tobytes()), rgb)
    assert check_image("mono8", 2, 3, 3, bytes(6)).shape == (2, 3, 3)
    for args, reason in [(("yuv422", 2, 3, 9, bytes(18)), "encoding"), (("rgb8", 2, 3, 9, bytes(5)), "bytes"),
                         (("rgb8", 0, 3, 9, b""), "size"), (("rgb8", 2, 3, 4, bytes(8)), "step")]:  # fmt: skip
        with pytest.raises(Rejected, match=reason):
            check_image(*args)
    assert resize_nearest(np.zeros((128, 96, 3), np.uint8), 64, 64).shape == (64, 64, 3)
