"""ament's flake8 check of this package (runs under `colcon test` on a ROS install)."""

import pytest

ament_flake8 = pytest.importorskip("ament_flake8.main", reason="ament_flake8 comes with a ROS install")


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = ament_flake8.main_with_errors(argv=[])
    assert rc == 0, f"Found {len(errors)} code style errors / warnings:\n" + "\n".join(errors)
