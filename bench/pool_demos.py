"""Pool demo folders of one env into a new folder (DAgger rounds collected by parallel processes, issue 20).

`ast-robot demos collect --append` adds to one folder from one process; parallel collectors write one folder
each. This links their episodes (symlinks, renamed episode_NNNNN.npz in order) into OUT with one meta.json:
the first folder's, its ``files`` the pooled list and ``collections`` every source's (with ``source``). Folders
recorded in another env (id or env_config) are refused, naming the folder and the field.

    .venv/bin/python bench/pool_demos.py OUT DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pool(out: Path, sources: list[Path]) -> dict:
    """Link ``sources``' episodes into ``out`` (must not exist) and write its meta.json; returns the meta."""
    from ast_robot.envs.demos import read_meta, write_meta

    metas = [read_meta(s) for s in sources]
    first = metas[0]
    for src, meta in zip(sources, metas):
        for key in ("env_id", "env_config"):
            if meta.get(key) != first.get(key):
                raise ValueError(f"{src}/meta.json: {key} differs from {sources[0]}'s; pool folders of one env only")
    out.mkdir(parents=True)
    files, collections = [], []
    for src, meta in zip(sources, metas):
        for name in meta["files"]:
            files.append(f"episode_{len(files):05d}.npz")
            os.symlink((src / name).resolve(), out / files[-1])
        collections += [{**c, "source": str(src)} for c in meta.get("collections", [meta])]
    pooled = {**first, "files": files, "episodes": len(files), "collections": collections,
              "pooled_from": [str(s) for s in sources]}  # fmt: skip
    pooled.pop("format", None), pooled.pop("version", None)  # write_meta stamps its own
    write_meta(out, pooled)
    return pooled


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("sources", type=Path, nargs="+")
    args = p.parse_args()
    meta = pool(args.out, args.sources)
    print(f"{args.out}: {meta['episodes']} episodes from {len(args.sources)} folders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
