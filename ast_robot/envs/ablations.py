"""Input ablations of a pick-and-place policy: does it need its camera, and does it follow its instruction?

``probe_episode(env, act, seed, condition)`` runs one episode of the deploy layout with the policy's inputs
altered by ``condition``:

* ``as_given``: nothing altered (task success as `eval` measures it);
* ``swapped``: the instruction names another cube (same template and pad); a policy that reads it picks
  that cube, and success means that cube on the named pad;
* ``blank_instruction``: the instruction all padding bytes (with 2 cubes, chance is 50%);
* ``blank_camera``: black images from every camera (nothing says where anything is).

It records which cube the policy picked (the one lifted highest, else moved furthest: ``picked_object``),
so instruction-following (picked == named) is reported apart from task success, and where an episode
failed (``outcome``): the lever a failure calls for differs (see :func:`outcome`). ``reached`` (the cubes the
TCP came within ``REACHED`` of) tells a failed grasp at the named cube from a policy that went for another
cube or for none, when no cube moved enough to count as picked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CONDITIONS = ("as_given", "swapped", "blank_instruction", "blank_camera")
LIFTED = 0.02  # m above its start: the cube was picked up
MOVED = 0.03  # m from its start (x, y): the cube was pushed or dragged, when none was lifted
REACHED = 0.03  # m: the TCP came this close to a cube's centre (the expert grasps with the TCP at the centre)
OUTCOMES = ("success", "wrong_cube", "never_lifted", "carried_at_end", "placed_off", "dropped")

Act = Callable[[dict[str, np.ndarray]], np.ndarray]


def encode(text: str, length: int) -> np.ndarray:
    """``text`` as the env's instruction bytes (UTF-8, zero padded to ``length``)."""
    raw = text.encode("utf-8")
    if len(raw) > length:
        raise ValueError(f"instruction {text!r} is {len(raw)} bytes; the policy takes {length}")
    out = np.zeros(length, dtype=np.uint8)
    out[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def swapped_instruction(env: Any) -> tuple[str, int]:
    """(the episode's instruction with the cube's colour replaced by another cube's, that cube's index).

    Every template names the cube first as "the <colour> ", so the first such phrase is the cube's even
    when the pad has the same colour."""
    u = env.unwrapped
    names = u.colour_names["objects"]
    other = next(i for i in range(len(names)) if i != u.target_object)
    phrase = f"the {names[u.target_object]} "
    if phrase not in u.instruction:
        raise ValueError(f"instruction {u.instruction!r} does not name its cube as {phrase!r}")
    return u.instruction.replace(phrase, f"the {names[other]} ", 1), other


def picked_object(lift: np.ndarray, moved: np.ndarray) -> int | None:
    """Index of the cube the policy went for: the highest lifted above ``LIFTED``, else the furthest moved
    beyond ``MOVED``, else None (no cube touched in a way that counts)."""
    if lift.max() > LIFTED:
        return int(lift.argmax())
    if moved.max() > MOVED:
        return int(moved.argmax())
    return None


def outcome(named: int, picked: int | None, success: bool, lift: np.ndarray, end_height: np.ndarray,
            goal_distance: float, threshold: float) -> str:  # fmt: skip
    """Where an episode ended, one of ``OUTCOMES``: ``success``; ``wrong_cube`` (another cube picked);
    ``never_lifted`` (the named cube never rose ``LIFTED``: the grasp failed); ``carried_at_end`` (still up at
    the end: placing was too slow or hovered); ``placed_off`` (set down within twice the success radius of
    the goal: a near miss); ``dropped`` (set down or fallen farther away). ``lift``: each cube's highest rise
    above its start (m), ``end_height``: its rise at the end."""
    if success:
        return "success"
    if picked is not None and picked != named:
        return "wrong_cube"
    if lift[named] <= LIFTED:
        return "never_lifted"
    if end_height[named] > LIFTED:
        return "carried_at_end"
    return "placed_off" if goal_distance < 2 * threshold else "dropped"


def probe_episode(env: Any, act: Act, seed: int, condition: str,
                  reset: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """One episode under ``condition``: {condition, seed, named, picked, followed, success}.

    ``reset`` is called after the env's reset (a scripted expert's, for the instrument's own tests); before it, the
    episode state of the policy whose bound ``act`` this is (``reset_episode``, where it has one)."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition {condition!r}: choose from {list(CONDITIONS)}")
    obs, _ = env.reset(seed=seed)
    owner_reset = getattr(getattr(act, "__self__", None), "reset_episode", None)
    if callable(owner_reset):  # a policy's bound act() that keeps state across calls: a fresh episode
        owner_reset()
    if reset is not None:
        reset()
    u = env.unwrapped
    named, text = u.target_object, None
    if condition == "swapped":
        swapped, named = swapped_instruction(env)
        text = encode(swapped, len(obs["instruction"]))
    n = len(u.colour_names["objects"])
    start = np.array([u.object_pos(i).copy() for i in range(n)])  # (n, 3)
    top = start[:, 2].copy()
    nearest = np.full(n, np.inf)  # the TCP's closest approach to each cube's centre (m)
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(np.asarray(act(_altered(obs, condition, text)), dtype=np.float64))
        top = np.maximum(top, [u.object_pos(i)[2] for i in range(n)])
        nearest = np.minimum(nearest, [np.linalg.norm(u.tcp_pos - u.object_pos(i)) for i in range(n)])
        done = terminated or truncated
    end = np.array([u.object_pos(i).copy() for i in range(n)])
    picked = picked_object(top - start[:, 2], np.linalg.norm(end[:, :2] - start[:, :2], axis=1))
    distance = float(np.linalg.norm(end[named] - u.goal))
    success = distance < u.cfg.success_threshold
    how = outcome(named, picked, success, top - start[:, 2], end[:, 2] - start[:, 2], distance, u.cfg.success_threshold)
    return {"condition": condition, "seed": int(seed), "named": int(named), "picked": picked,
            "followed": picked == named, "success": bool(success), "outcome": how,
            "reached": [int(i) for i in np.flatnonzero(nearest < REACHED)]}  # fmt: skip


def _altered(obs: dict[str, np.ndarray], condition: str, text: np.ndarray | None) -> dict[str, np.ndarray]:
    out = dict(obs)
    if condition == "swapped":
        out["instruction"] = text
    elif condition == "blank_instruction":
        out["instruction"] = np.zeros_like(obs["instruction"])
    elif condition == "blank_camera":  # every camera: the scene's and, where the layout has one, the wrist's
        for key in ("camera", "wrist_camera"):
            if key in obs:
                out[key] = np.zeros_like(obs[key])
    return out


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per condition: episodes, successes, followed (picked the named cube), picked_any, the count of each
    ``outcome`` (results without one, from older callers, count none) and, of the failed episodes with a
    ``reached`` record, where the TCP went: ``failed_reached`` {named: it reached the named cube (a failed grasp
    or place), other: only another cube (it went for the wrong one), none: no cube}."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        row = out.setdefault(r["condition"], {"episodes": 0, "successes": 0, "followed": 0, "picked_any": 0,
                                              "outcomes": dict.fromkeys(OUTCOMES, 0)})  # fmt: skip
        if "outcome" in r:
            row["outcomes"][r["outcome"]] += 1
        if "reached" in r and not r["success"]:
            went = "named" if r["named"] in r["reached"] else "other" if r["reached"] else "none"
            where = row.setdefault("failed_reached", {"named": 0, "other": 0, "none": 0})
            where[went] += 1
        row["episodes"] += 1
        row["successes"] += r["success"]
        row["followed"] += r["followed"]
        row["picked_any"] += r["picked"] is not None
    return out
