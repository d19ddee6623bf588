"""A recorder killed before it closed its bag loses no outcome record: the journal keeps them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("rosbags")

from ast_robot.config.deploy import RosNames  # noqa: E402
from ast_robot.records import (  # noqa: E402
    RecordError,
    load_episodes,  # noqa: E402
    to_json,
)
from ast_robot.records.bag import JOURNAL_FILE, BagWriter, read_journal  # noqa: E402
from tests.gap.helpers import make_record  # noqa: E402

OUTCOME_TOPIC = RosNames().outcome

ROOT = Path(__file__).resolve().parents[2]

# Writes three outcomes and some joint states through BagWriter, says "ready", then waits to be killed.
RECORDER = textwrap.dedent("""
    import sys, time
    from ast_robot.records.bag import BagWriter
    from tests.gap.helpers import make_record
    from ast_robot.records import to_json
    bag = BagWriter(sys.argv[1])
    String = bag.typestore.types["std_msgs/msg/String"]
    for i in range(3):
        text = to_json(make_record(seed=i, source="real"))
        bag.write("/ast/outcome", bag.typestore.serialize_cdr(String(data=text), "std_msgs/msg/String"), i + 1)
    print("ready", flush=True)
    time.sleep(60)
""")


def _outcome_cdr(bag: BagWriter, seed: int) -> bytes:
    string = bag.typestore.types["std_msgs/msg/String"]
    return bag.typestore.serialize_cdr(string(data=to_json(make_record(seed=seed, source="real"))),
                                       "std_msgs/msg/String")  # fmt: skip


def test_records_survive_a_sigkilled_recorder(tmp_path):
    out = tmp_path / "bag"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(out)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (out / "metadata.yaml").exists()  # the bag itself was never finished
    with pytest.warns(UserWarning, match="never closed"):
        records = load_episodes(out)
    assert [r.seed for r in records] == [0, 1, 2]
    assert (records[2].actions == make_record(seed=2, source="real").actions).all()


def test_a_closed_bag_drops_its_journal_and_reads_as_a_bag(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        bag.write(OUTCOME_TOPIC, _outcome_cdr(bag, 4), 1)
        assert (tmp_path / "bag" / JOURNAL_FILE).is_file()
    assert not (tmp_path / "bag" / JOURNAL_FILE).exists()
    assert [r.seed for r in load_episodes(tmp_path / "bag")] == [4]


def test_journal_tail_cut_short_is_left_out_with_a_warning_and_bad_lines_are_errors(tmp_path):
    journal = tmp_path / JOURNAL_FILE
    whole = to_json(make_record(seed=1, source="real"))
    journal.write_text(whole + "\n" + whole[:40])
    with pytest.warns(UserWarning, match="cut short"):
        assert [r.seed for r in read_journal(journal)] == [1]
    journal.write_text(whole + "\n{not json}\n" + whole + "\n")
    with pytest.raises(RecordError, match="line 2"):
        read_journal(journal)
