"""freeze_heap: start-up objects leave the collector's full passes."""

from __future__ import annotations

import gc

from ast_robot.deploy.realtime import freeze_heap


def test_freeze_heap_moves_survivors_to_the_permanent_generation():
    keep = [[i] for i in range(1000)]  # tracked containers alive at "start-up"
    try:
        frozen = freeze_heap()
        assert frozen == gc.get_freeze_count() and frozen >= len(keep)
        assert not any(obj is keep for obj in gc.get_objects(generation=2))  # no longer walked
    finally:
        gc.unfreeze()  # leave the test process as it was
