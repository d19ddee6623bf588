"""ament's pep257 (docstring) check of this package (runs under `colcon test` on a ROS install)."""

import pytest

ament_pep257 = pytest.importorskip("ament_pep257.main", reason="ament_pep257 comes with a ROS install")


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = ament_pep257.main(argv=[".", "test"])
    assert rc == 0, "Found code style errors / warnings"
