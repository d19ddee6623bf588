"""The table + episode sheet the deployment judges by (deploy.table), and scripted:pickplace's program."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ast_robot.deploy.pick_program import PickProgram
from ast_robot.deploy.table import parse_table
from ast_robot.robot.scene import OBJECT_HALF_SIZE

TABLE = {"objects": [{"colour": "red", "x": 0.45, "y": -0.1}, {"colour": "blue", "x": 0.5, "y": 0.1, "yaw": 0.2}],
         "pads": [{"colour": "green", "x": 0.4, "y": 0.15}], "target": {"object": 1, "pad": 0}}  # fmt: skip


def test_the_target_place_is_its_pad_at_the_cube_half_height():
    table = parse_table(json.dumps(TABLE))
    assert table.place == (0.4, 0.15, OBJECT_HALF_SIZE) and table.objects[1] == (0.5, 0.1, 0.2)


@pytest.mark.parametrize("change,message", [
    ({"target": None}, "table.target: expected"),
    ({"target": {"object": 2, "pad": 0}}, "table.target.object: expected an index 0..1, got 2"),
    ({"target": {"object": True, "pad": 0}}, "table.target.object"),
    ({"pads": []}, "table.pads: expected a non-empty list"),
    ({"objects": [{"x": "a", "y": 0}]}, r"table.objects\[0\]: expected numbers"),
    ({"objects": [{"x": float("nan"), "y": 0}]}, r"table.objects\[0\]: .* must be finite"),
])  # fmt: skip
def test_a_bad_table_is_one_line_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        parse_table(json.dumps({**TABLE, **change}))
    with pytest.raises(ValueError, match="table: not JSON"):
        parse_table("{")


def test_the_pick_program_holds_without_a_table_and_heads_for_the_target_cube_with_one():
    n = 6
    obs = {"observation": np.zeros(2 * n + 10)}
    obs["observation"][2 * n : 2 * n + 3] = (0.4, 0.0, 0.3)  # TCP; its command offset 0
    program = PickProgram(4, n, 0.05)
    assert np.allclose(program.act(obs), [0, 0, 0, 1])  # no table: stay, open
    program.set_table(parse_table(json.dumps(TABLE)))
    action = program.act(obs)
    assert action[0] > 0 and action[1] > 0 and action[2] < 0 and action[3] == 1.0  # toward (0.5, 0.1), down
