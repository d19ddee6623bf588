"""Success broken down by randomized parameter, with an interval per bin."""

from __future__ import annotations

import pytest

from ast_robot.evaluation import success_by_parameter
from ast_robot.gap.stats import wilson_interval
from tests.gap.helpers import make_record


def test_each_bin_has_its_wilson_interval():
    # latency takes 2 values (one bin each): 0 steps succeeds 4/4, 3 steps 1/4
    records = [make_record(seed=i, success=i < 4 or i == 4, randomization={"latency": 0.0 if i < 4 else 3.0})
               for i in range(8)]  # fmt: skip
    low, high = success_by_parameter(records)["latency"]
    assert (low["episodes"], low["success_rate"], high["success_rate"]) == (4, 1.0, 0.25)
    ci = wilson_interval(1, 4)
    assert (high["success_low"], high["success_high"]) == pytest.approx((ci.low, ci.high))
    assert low["success_high"] == 1.0 and low["success_low"] == pytest.approx(wilson_interval(4, 4).low)
