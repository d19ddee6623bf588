"""ament's copyright check (skipped: the license is declared once, in package.xml and the repository)."""

import pytest

ament_copyright = pytest.importorskip("ament_copyright.main", reason="ament_copyright comes with a ROS install")


@pytest.mark.skip(reason="no per-file copyright headers; Apache-2.0 is declared in package.xml")
@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    rc = ament_copyright.main(argv=[".", "test"])
    assert rc == 0, "Found errors"
