"""Files a user may be handed: no file runs code, and every bad file is one line naming it.

Each file kind (policy and trainer checkpoints, SB3 SAC zips, observation statistics, demonstrations,
configs, twin hidden parameters, robot wiring, episode records, bags) is broken in the ways files break
(empty, truncated, random bytes, wrong keys, NaN, another env, a pickle payload) and handed to the real
CLI (``main``). Every case must exit non-zero with exactly one line on stderr that names the file and
no traceback. Malicious fixtures carry a payload that creates a marker file; the marker must stay absent,
and a null test shows each payload does fire when the file is loaded the unsafe way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from ast_robot.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
BASE = Path(__file__).resolve().parents[2] / "configs/experiments/base.yaml"
EVAL = ["--episodes", "1", "--video", "0"]


class Payload:
    """Unpickling this creates ``marker``: what a malicious file would do (any code could stand there)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ------------------------------------------------------------------------------------------ fixtures
@dataclass
class World:
    """Copies of real files of every kind, made by the real writers, in one folder."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / "PAYLOAD_RAN"

    @property
    def bc(self) -> Path:  # a BC run: config.yaml, ckpt-*/ (trainer), policy/ckpt-*/, eval/
        return self.root / "runs" / "bc"

    @property
    def policy_ckpt(self) -> Path:
        return next((self.bc / "policy").glob("ckpt-*"))

    @property
    def trainer_ckpt(self) -> Path:
        return next(self.bc.glob("ckpt-*"))

    @property
    def sac(self) -> Path:  # a SAC run: config.yaml, sac.zip, obs_norm.json
        return self.root / "runs" / "sac"

    @property
    def demos(self) -> Path:
        return self.root / "demos"

    @property
    def episode(self) -> Path:
        return self.demos / "episode_00000.npz"

    @property
    def cfg(self) -> Path:  # the BC experiment (run_root = root/runs)
        return self.root / "bc.yaml"

    @property
    def bag(self) -> Path:
        return self.root / "bag"

    def yaml(self, name: str, text: str | bytes) -> Path:
        path = self.root / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path


def _experiment(root: Path, trainer: str) -> str:
    train = ("{type: bc, steps: 2, n_demos: 1, eval_episodes: 1, batch_size: 8}" if trainer == "bc"
             else "{type: sac, steps: 100, learning_starts: 50, batch_size: 8}")  # fmt: skip
    return (f"parent: {BASE}\nname: {trainer}\nrun_root: {root / 'runs'}\ntrain: {train}\n"
            "policy: {type: mlp, hidden_sizes: [8, 8]}\n")  # fmt: skip


def build_world(root: Path) -> Path:
    """Real files of every kind under ``root``: a BC run, a SAC run, demonstrations and a bag."""
    from ast_robot.config import load_config, save_config
    from ast_robot.records import read_records
    from ast_robot.records.bag import write_outcome_bag
    from ast_robot.trainers.sac import build_sac, make_vec_env, save_obs_norm

    (root / "bc.yaml").write_text(_experiment(root, "bc"))
    assert main(["train", str(root / "bc.yaml"), "--no-progress"]) == 0
    assert main(["demos", "collect", "--env", "ast_robot/ReachUR5e-v0", "--episodes", "1", "--out",
                 str(root / "demos")]) == 0  # fmt: skip
    (root / "sac.yaml").write_text(_experiment(root, "sac"))
    cfg = load_config(root / "sac.yaml")
    venv = make_vec_env(cfg)
    (root / "runs" / "sac").mkdir(parents=True)
    build_sac(cfg, venv).save(root / "runs" / "sac" / "sac.zip")  # an untrained model: only the format counts
    save_obs_norm(venv, root / "runs" / "sac" / "obs_norm.json")
    save_config(cfg, root / "runs" / "sac" / "config.yaml")
    venv.close()
    write_outcome_bag(root / "bag", read_records(root / "runs" / "bc" / "eval"))
    return root


def copy_world(src: Path, dst: Path) -> World:
    """A fresh copy of :func:`build_world`'s files whose configs point into the copy."""
    shutil.copytree(src, dst)
    w = World(dst)
    for name in ("bc.yaml", "sac.yaml"):  # the copies' run_root
        (w.root / name).write_text(_experiment(w.root, name[:-5]))
    for run in (w.bc, w.sac):
        text = (run / "config.yaml").read_text().replace(str(src), str(w.root))
        (run / "config.yaml").write_text(text)
    return w


@pytest.fixture(scope="module")
def world_src(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def world(world_src, tmp_path) -> World:
    return copy_world(world_src, tmp_path / "w")


# ------------------------------------------------------------------------------------------ breakers
def empty(path: Path) -> None:
    path.write_bytes(b"")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_npz(path: Path, change: Callable[[dict], None]) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


def edit_zip(path: Path, name: str, content: bytes | None) -> None:
    """Replace (None: drop) one member of a zip archive."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if content is None:
        members.pop(name)
    else:
        members[name] = content
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def torch_bytes(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def sac_data_with_payload(w: World) -> None:
    """SB3's `data` entry with a `:serialized:` (cloudpickled, base64) object that creates the marker."""
    zip_path = w.sac / "sac.zip"
    with zipfile.ZipFile(zip_path) as z:
        data = json.loads(z.read("data"))
    blob = base64.b64encode(pickle.dumps(Payload(w.marker))).decode()
    data["observation_space"] = {":type:": "<class 'gymnasium.spaces.dict.Dict'>", ":serialized:": blob}
    edit_zip(zip_path, "data", json.dumps(data).encode())


# ------------------------------------------------------------------------------------------ the table
# id -> (break the world, command line, the file the line must name)
Case = tuple[Callable[[World], object], Callable[[World], list[str]], Callable[[World], Path]]


def eval_bc(w: World) -> list[str]:
    return ["eval", str(w.bc), *EVAL]


def eval_sac(w: World) -> list[str]:
    return ["eval", str(w.sac), *EVAL, "--checkpoint", "final"]


def deploy(w: World) -> list[str]:
    return ["deploy", str(w.policy_ckpt), "--robot", "ur5e"]


def train_demos(w: World) -> list[str]:
    return ["train", str(w.cfg), "--no-progress", "--set", f"train.demos={w.demos}"]


def resume(w: World) -> list[str]:
    return ["train", str(w.cfg), "--no-progress", "--resume", str(w.trainer_ckpt)]


def gap(sim: Callable[[World], Path], real: Callable[[World], Path]) -> Callable[[World], list[str]]:
    return lambda w: ["gap-report", "--sim", str(sim(w)), "--real", str(real(w)), "--out", str(w.root / "gap")]


def state(w: World) -> Path:
    return w.policy_ckpt / "state.pt"


def sac_zip(w: World) -> Path:
    return w.sac / "sac.zip"


def records(w: World) -> Path:
    return w.bc / "eval"


def records_npz(w: World) -> Path:
    return next((w.bc / "eval").glob("arrays-*.npz"))


def mcap(w: World) -> Path:
    return next(w.bag.glob("*.mcap"))


def policy_meta(w: World) -> None:
    torch.save({"format_version": 1, "step": 0, "model": {}}, state(w))


def another_network(w: World) -> None:
    sd = torch.load(state(w), weights_only=True)
    sd["policy_meta"]["config"]["hidden_sizes"] = [16, 16]
    torch.save(sd, state(w))


def nan_actions(w: World) -> None:
    edit_npz(w.episode, lambda a: a["action"].__setitem__((0, 0), np.nan))


def wider_observation(w: World) -> None:
    edit_npz(w.episode, lambda a: a.__setitem__("observation", np.hstack([a["observation"], a["observation"][:, :1]])))


CASES: dict[str, Case] = {
    # policy checkpoints: eval of a BC run, deploy
    "policy state.pt empty": (lambda w: empty(state(w)), eval_bc, state),
    "policy state.pt truncated": (lambda w: truncate(state(w)), eval_bc, state),
    "policy state.pt random bytes": (lambda w: random_bytes(state(w)), eval_bc, state),
    "policy state.pt payload": (lambda w: torch.save({"x": Payload(w.marker)}, state(w)), eval_bc, state),
    "policy state.pt wrong keys": (lambda w: torch.save({"weights": torch.zeros(3)}, state(w)), eval_bc, state),
    "policy state.pt no policy meta": (policy_meta, eval_bc, lambda w: w.policy_ckpt),
    "policy of another network": (another_network, eval_bc, lambda w: w.bc / "policy"),
    "policy meta.json truncated": (lambda w: truncate(w.policy_ckpt / "meta.json"), eval_bc,
                                   lambda w: w.policy_ckpt / "meta.json"),
    "policy config.yaml binary": (lambda w: random_bytes(w.policy_ckpt / "config.yaml"), eval_bc,
                                  lambda w: w.policy_ckpt / "config.yaml"),
    "policy latest names a path": (lambda w: (w.bc / "policy" / "latest").write_text("../../etc\n"), eval_bc,
                                   lambda w: w.bc / "policy" / "latest"),
    "deploy state.pt truncated": (lambda w: truncate(state(w)), deploy, state),
    "deploy state.pt payload": (lambda w: torch.save([Payload(w.marker)], state(w)), deploy, state),
    "deploy state.pt random bytes": (lambda w: random_bytes(state(w)), deploy, state),
    # trainer checkpoints: --resume
    "resume state.pt random bytes": (lambda w: random_bytes(w.trainer_ckpt / "state.pt"), resume,
                                     lambda w: w.trainer_ckpt / "state.pt"),
    "resume state.pt wrong keys": (lambda w: torch.save({"format_version": 1, "step": 2}, w.trainer_ckpt / "state.pt"),
                                   resume, lambda w: w.trainer_ckpt / "state.pt"),
    # SB3 SAC zips and their observation statistics: eval of a SAC run
    "sac.zip empty": (lambda w: empty(sac_zip(w)), eval_sac, sac_zip),
    "sac.zip truncated": (lambda w: truncate(sac_zip(w)), eval_sac, sac_zip),
    "sac.zip random bytes": (lambda w: random_bytes(sac_zip(w)), eval_sac, sac_zip),
    "sac.zip without policy.pth": (lambda w: edit_zip(sac_zip(w), "policy.pth", None), eval_sac, sac_zip),
    "sac.zip policy.pth payload": (lambda w: edit_zip(sac_zip(w), "policy.pth", torch_bytes({"x": Payload(w.marker)})),
                                   eval_sac, sac_zip),
    "sac.zip of another network": (lambda w: (w.sac / "config.yaml").write_text(
        (w.sac / "config.yaml").read_text().replace("- 8\n  - 8", "- 32\n  - 32")), eval_sac, sac_zip),
    "obs_norm.json truncated": (lambda w: truncate(w.sac / "obs_norm.json"), eval_sac, lambda w: w.sac / "obs_norm.json"),
    "obs_norm.json wrong keys": (lambda w: edit_json(w.sac / "obs_norm.json", lambda d: d.pop("stats")), eval_sac,
                                 lambda w: w.sac / "obs_norm.json"),
    "obs_norm.json NaN": (lambda w: edit_json(w.sac / "obs_norm.json", lambda d: d["stats"]["observation"]["var"]
                                              .__setitem__(0, float("nan"))), eval_sac, lambda w: w.sac / "obs_norm.json"),
    # demonstrations: train with train.demos
    "demos meta.json without files": (lambda w: edit_json(w.demos / "meta.json", lambda d: d.pop("files")), train_demos,
                                      lambda w: w.demos / "meta.json"),
    "demos meta.json truncated": (lambda w: truncate(w.demos / "meta.json"), train_demos, lambda w: w.demos / "meta.json"),
    "demos files leave the folder": (lambda w: edit_json(w.demos / "meta.json", lambda d: d.__setitem__(
        "files", ["../bc.yaml.npz"])), train_demos, lambda w: w.demos / "meta.json"),
    "demos episode empty": (lambda w: empty(w.episode), train_demos, lambda w: w.episode),
    "demos episode truncated": (lambda w: truncate(w.episode), train_demos, lambda w: w.episode),
    "demos episode random bytes": (lambda w: random_bytes(w.episode), train_demos, lambda w: w.episode),
    "demos episode without action": (lambda w: edit_npz(w.episode, lambda a: a.pop("action")), train_demos,
                                     lambda w: w.episode),
    "demos episode NaN actions": (nan_actions, train_demos, lambda w: w.episode),
    "demos episode of another shape": (wider_observation, train_demos, lambda w: w.episode),
    "demos episode short rows": (lambda w: edit_npz(w.episode, lambda a: a.__setitem__("action", a["action"][:-3])),
                                 train_demos, lambda w: w.episode),
    "demos of another env": (lambda w: edit_json(w.demos / "meta.json", lambda d: d.__setitem__(
        "env_id", "ast_robot/PickPlaceFR3-v0")), train_demos, lambda w: w.demos / "meta.json"),
    # configs, hidden parameters, robot wiring
    "config binary": (lambda w: w.yaml("c.yaml", b"\x89PNG\r\n\x1a\n\x00\xff"), lambda w: ["config", "show", str(w.root / "c.yaml")],
                      lambda w: w.root / "c.yaml"),
    "config truncated": (lambda w: w.yaml("c.yaml", "train: {lr: [1, 2"), lambda w: ["config", "show", str(w.root / "c.yaml")],
                         lambda w: w.root / "c.yaml"),
    "config python tag": (lambda w: w.yaml("c.yaml", f"name: !!python/object/apply:os.system ['touch {w.marker}']\n"),
                          lambda w: ["config", "show", str(w.root / "c.yaml")], lambda w: w.root / "c.yaml"),
    "config list": (lambda w: w.yaml("c.yaml", "- 1\n- 2\n"), lambda w: ["config", "show", str(w.root / "c.yaml")],
                    lambda w: w.root / "c.yaml"),
    "config unknown key": (lambda w: w.yaml("c.yaml", "trian: {}\n"), lambda w: ["config", "show", str(w.root / "c.yaml")],
                           lambda w: w.root / "c.yaml"),
    "run config.yaml binary": (lambda w: random_bytes(w.bc / "config.yaml"), eval_bc, lambda w: w.bc / "config.yaml"),
    "hidden python tag": (lambda w: w.yaml("h.yaml", f"mass_scale: !!python/object/apply:os.system ['touch {w.marker}']\n"),
                          lambda w: ["twin", "--hidden", str(w.root / "h.yaml")], lambda w: w.root / "h.yaml"),
    "hidden bad value": (lambda w: w.yaml("h.yaml", "mass_scale: -1\n"), lambda w: ["twin", "--hidden", str(w.root / "h.yaml")],
                         lambda w: w.root / "h.yaml"),
    "hidden binary": (lambda w: w.yaml("h.yaml", b"\xff\xfe\x00\x01"), lambda w: ["twin", "--hidden", str(w.root / "h.yaml")],
                      lambda w: w.root / "h.yaml"),
    "robot python tag": (lambda w: w.yaml("r.yaml", f"robot: !!python/object/apply:os.system ['touch {w.marker}']\n"),
                         lambda w: ["deploy", "scripted:reach", "--robot", str(w.root / "r.yaml")], lambda w: w.root / "r.yaml"),
    "robot truncated": (lambda w: w.yaml("r.yaml", "robot: ur5e\ntopics: {joint_states: [\n"),
                        lambda w: ["deploy", "scripted:reach", "--robot", str(w.root / "r.yaml")], lambda w: w.root / "r.yaml"),
    "robot command latency in ms": (lambda w: w.yaml("r.yaml", "robot: fr3\ncommand_interface: forward_position\n"
                                                             "command_latency_s: 40\n"),
                                    lambda w: ["deploy", "scripted:reach", "--robot", str(w.root / "r.yaml")],
                                    lambda w: w.root / "r.yaml"),  # fmt: skip
    # episode records and bags: gap-report
    "records.jsonl binary": (lambda w: random_bytes(records(w) / "records.jsonl"), gap(records, lambda w: w.bag),
                             lambda w: records(w) / "records.jsonl"),
    "records arrays truncated": (lambda w: truncate(records_npz(w)), gap(records, lambda w: w.bag), records_npz),
    "records arrays payload": (lambda w: _npz_payload(records_npz(w), w.marker), gap(records, lambda w: w.bag), records_npz),
    "bag mcap random bytes": (lambda w: random_bytes(mcap(w)), gap(records, lambda w: w.bag), lambda w: w.bag),
    "bag mcap truncated": (lambda w: truncate(mcap(w)), gap(records, lambda w: w.bag), lambda w: w.bag),
    "bag metadata python tag": (lambda w: _bag_metadata_payload(w), gap(records, lambda w: w.bag), lambda w: w.bag),
}


def _npz_payload(path: Path, marker: Path) -> None:
    """The records' arrays file with one object array whose element is the payload."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    first = sorted(arrays)[0]
    arrays[first] = np.array([Payload(marker)], dtype=object)
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


def _bag_metadata_payload(w: World) -> None:
    meta = w.bag / "metadata.yaml"
    meta.write_text(meta.read_text().replace("rosbag2_bagfile_information:",
                                             f"x: !!python/object/apply:os.system ['touch {w.marker}']\n"
                                             "rosbag2_bagfile_information:", 1))  # fmt: skip


def run_case(world: World, case: str) -> dict:
    """Break the world as ``case`` says, run its command through ``main``; what a user would see."""
    import contextlib
    import io

    breaker, argv, named = CASES[case]
    breaker(world)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv(world))
    lines = err.getvalue().strip().splitlines()
    return {"case": case, "exit": code, "stderr_lines": len(lines), "names_file": bool(lines) and str(named(world)) in lines[0],
            "traceback": "Traceback" in err.getvalue(), "unsafe_hint": "allow_pickle" in err.getvalue() or "weights_only" in err.getvalue(),
            "payload_ran": world.marker.exists(), "line": lines[0].replace(str(world.root), "<w>") if lines else ""}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_is_one_line_naming_it(world, case, monkeypatch):
    monkeypatch.delenv("AST_ROBOT_DEBUG", raising=False)
    out = run_case(world, case)
    assert out["exit"] != 0 and out["stderr_lines"] == 1 and out["names_file"], out
    assert not out["traceback"] and not out["unsafe_hint"], out
    assert not out["payload_ran"], "a payload ran"
    print(out["line"])  # pytest -rP shows every case's line


@pytest.mark.parametrize("case", ["deploy state.pt truncated", "sac.zip random bytes", "demos episode NaN actions"])
def test_the_installed_command_prints_the_same_one_line(world, case):
    """The same through ``python -m ast_robot``: no warning or log line from a library joins it."""
    import os
    import subprocess
    import sys

    breaker, argv, named = CASES[case]
    breaker(world)
    env = {k: v for k, v in os.environ.items() if k != "AST_ROBOT_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "ast_robot", *argv(world)], capture_output=True, text=True,
                          env={**env, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, timeout=300)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and str(named(world)) in lines[0], done.stderr
    assert not world.marker.exists()


def test_the_table_covers_every_file_kind():
    kinds = {"policy", "deploy", "resume", "sac.zip", "obs_norm", "demos", "config", "hidden", "robot", "records", "bag"}
    assert kinds <= {name.split(" ")[0].split(".")[0] if not name.startswith("sac.zip") else "sac.zip" for name in CASES}


def test_demos_of_another_env_name_both(world, capsys):
    edit_json(world.demos / "meta.json", lambda d: d.__setitem__("env_id", "ast_robot/PickPlaceFR3-v0"))
    assert main(train_demos(world)) != 0
    line = capsys.readouterr().err
    assert "ast_robot/PickPlaceFR3-v0" in line and "ast_robot/ReachUR5e-v0" in line


# ------------------------------------------------------------------------------------------ no code from files
def test_sac_zip_with_a_serialized_payload_evaluates_without_running_it(world, capsys):
    """SB3 keeps cloudpickled `:serialized:` entries in the zip's `data`; acting never parses that entry."""
    sac_data_with_payload(world)
    assert main(eval_sac(world)) == 0, capsys.readouterr().err
    assert not world.marker.exists()


def test_the_payloads_are_live(world):
    """Null test of the fixtures: each payload does run when its file is loaded the unsafe way."""
    import yaml
    from stable_baselines3 import SAC

    sac_data_with_payload(world)
    with pytest.raises(ValueError, match="not a Gymnasium space"):  # it fails only after the payload ran
        SAC.load(world.sac / "sac.zip", device="cpu", custom_objects={"replay_buffer_class": None})
    assert world.marker.exists(), "SB3's SAC.load ran the serialized entry"
    for load in (lambda: torch.load(_saved(world, {"x": Payload(world.marker)}), weights_only=False),
                 lambda: np.load(_npz(world), allow_pickle=True)["a"],
                 lambda: yaml.unsafe_load(f"x: !!python/object/apply:os.system ['touch {world.marker}']")):  # fmt: skip
        world.marker.unlink()
        load()
        assert world.marker.exists()


def _saved(w: World, obj) -> Path:
    torch.save(obj, w.root / "p.pt")
    return w.root / "p.pt"


def _npz(w: World) -> Path:
    np.savez(w.root / "p.npz", a=np.array([Payload(w.marker)], dtype=object))
    return w.root / "p.npz"


# ------------------------------------------------------------------------------------------ run folders
def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}  # fmt: skip


def test_failed_resume_changes_nothing_in_the_run_folder(world, capsys):
    (world.bc / "config.yaml").write_text((world.bc / "config.yaml").read_text() + "# the user's note\n")
    random_bytes(world.trainer_ckpt / "state.pt")
    before = _snapshot(world.bc)
    changed = ["--set", "train.lr=0.5"]  # a different config: the failed resume must not write it
    assert main([*resume(world), *changed]) == 2
    assert _snapshot(world.bc) == before
    assert str(world.trainer_ckpt / "state.pt") in capsys.readouterr().err


def test_debug_shows_the_traceback(world, monkeypatch):
    monkeypatch.setenv("AST_ROBOT_DEBUG", "1")
    truncate(state(world))
    with pytest.raises(ValueError, match="state.pt"):
        main(eval_bc(world))
