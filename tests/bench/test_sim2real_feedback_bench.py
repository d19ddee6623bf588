"""bench/sim2real_feedback.py on its null cases: two identical loops measure no gain, no discordant table and
McNemar p 1; no feedback leaves a pool's loss uniform (the top 10% of episodes carry 10% of it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ast_robot.records import write_records
from bench.sim2real_feedback import ablation, pool_effect
from tests.gap.helpers import make_record


def _loop(root: Path, real: str) -> Path:
    for r in (0, 1):
        folder = root / "exp" / f"round{r}"
        write_records(folder / "eval", [make_record(seed=i, success=i % 10 != 0) for i in range(20)])
        write_records(folder / "real", [make_record(seed=i, source="real", success=c == "1", meta={"table": f"t{i}"})
                                        for i, c in enumerate(real)])  # fmt: skip
        (folder / "config.yaml").write_text("train: {finetune_steps: 100, batch_size: 8, finetune_demos: 5}\n")
        if r:
            (folder / "ckpt-00000100").mkdir()
    return root


def test_identical_loops_measure_no_gain(tmp_path):
    tables = "1101111011"
    rows, goals = ablation(_loop(tmp_path / "on", tables), _loop(tmp_path / "off", tables))
    paired = rows[-1]
    assert paired["arm"] == "paired on vs off" and paired["same_tables"] is True
    assert (paired["real_on_only"], paired["real_off_only"], paired["real_mcnemar_p"]) == (0, 0, 1.0)
    assert (paired["sim_paired_n"], paired["sim_on_only"], paired["sim_off_only"]) == (20, 0, 0)
    assert goals[0]["measured"] == 0.0 and goals[0]["met"] is False
    assert "_sim" not in rows[0] and "_layouts" not in rows[0]
    trained = [r for r in rows if r.get("round") == 1 and r["arm"] in ("on", "off")]
    assert [r["rows_trained"] for r in trained] == [800, 800]  # equal budget: steps x batch, ungated
    assert trained[0]["real_per_1k_rows"] == pytest.approx(1000 * 0.8 / 800)
    assert [r["rows_trained"] for r in rows if r["round"] == 0 and r["arm"] in ("on", "off")] == [0, 0]  # round 0: deployed as given


def test_no_feedback_leaves_the_pool_loss_uniform():
    pool = [{"object_mass": 0.7 + 0.01 * i} for i in range(50)]
    assert pool_effect(None, pool) == {"w_min": 1.0, "w_max": 1.0, "top10_share": pytest.approx(0.1)}


def test_tables_pool_paired_seeds_and_refuse_unpaired_tables(tmp_path):
    from bench.sim2real_feedback import tables

    runs = {name: _loop(tmp_path / name, real) for name, real in
            (("on0", "1101"), ("off0", "1101"), ("on1", "1111"), ("off1", "0111"))}  # fmt: skip
    rows, goals = tables([runs["on0"], runs["on1"]], [runs["off0"], runs["off1"]])
    pooled = rows[-1]
    assert (pooled["n_real"], pooled["real_on"], pooled["real_off"]) == (8, 7, 6)
    assert (pooled["on_only"], pooled["off_only"], pooled["mcnemar_p"]) == (1, 0, 1.0)
    assert goals[0]["measured"] == 12.5
    same = tables([runs["on0"]], [runs["on0"]])[1][0]["measured"]
    assert same == 0.0  # null case: a policy against itself
    other = _loop(tmp_path / "other", "1101")
    for rec in (other / "exp" / "round0" / "real").glob("*.jsonl"):
        rec.write_text(rec.read_text().replace('"t0"', '"t9"'))
    with pytest.raises(ValueError, match="the real tables differ"):
        tables([runs["on0"]], [other])
