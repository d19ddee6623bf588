"""Atomic file writes and clear errors for bad files.

Writes go to a temporary name in the same folder (``.NAME.<pid>.XXXX.tmp``), are fsynced and renamed: a
crash part-way leaves either the old file or the new one, never half of one, and a temporary whose
process is gone is removed by :func:`remove_stale_temporaries` at the next start.

Reads of files a user may have been handed (checkpoints, demos, bags, configs) go through :func:`reading`:
whatever the parser raises becomes one :class:`BadFile` line naming the file, what is wrong and what was
expected, and no library hint such as "load it with allow_pickle / weights_only=False" is ever passed on.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def fsync_dir(path: str | Path) -> None:
    """Flush a directory entry (after a rename) so the rename survives a power cut."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def default_mode(directory: bool = False) -> int:
    """The mode a new file (0666) or folder (0777) gets from ``open``/``mkdir`` under the current umask;
    ``tempfile`` creates 0600 files and 0700 folders, which would hide results from other users."""
    return (0o777 if directory else 0o666) & ~_umask()


@functools.cache
def _umask() -> int:
    """Read once per process: reading it means setting it, which would race other threads' file creation."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.chmod(tmp, default_mode())  # mkstemp makes it 0600; a plain open() would give 0666 - umask
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


# ----------------------------------------------------------------------------------------- temporaries
# ".<name>.<pid>.<random>.tmp" (files and checkpoint folders) and ".<name>.old-<pid>.<random>" (a checkpoint
# folder set aside while its step is rewritten): the pid tells whether the writer may still be running.
_TEMP = re.compile(r"^\.(?P<name>.+?)\.(?:old-)?(?P<pid>\d+)\.[A-Za-z0-9_]+(?:\.tmp)?$")


def temp_prefix(name: str, old: bool = False) -> str:
    """The ``prefix`` for ``tempfile.mkstemp``/``mkdtemp`` of a temporary standing in for ``name``."""
    return f".{name}.{'old-' if old else ''}{os.getpid()}."


def remove_stale_temporaries(folder: str | Path, own_too: bool = False) -> list[Path]:
    """Delete the temporaries left in ``folder`` by writers that died (killed, power cut); returns them.

    A temporary of a process still alive is another writer's work in progress and is kept, unless it is
    this process's own and ``own_too`` (a run starting up has none in flight yet: its pid may be the dead
    run's, as in a container restarted with the same pid)."""
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        pid = int(match["pid"])
        if (pid == os.getpid() and not own_too) or (pid != os.getpid() and _alive(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's live process
        return True
    except (ProcessLookupError, OverflowError):  # gone, or not a pid at all
        return False
    return True


# ----------------------------------------------------------------------------------------- bad files
class BadFile(ValueError):
    """A file cannot be used. The message, one line: ``PATH: what is wrong; expected WHAT``."""

    def __init__(self, path: str | Path, problem: str, expected: str) -> None:
        self.path, self.problem, self.expected = Path(path), one_line(problem), one_line(expected)
        super().__init__(f"{path}: {self.problem}; expected {self.expected}")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with its whitespace runs (newlines too) collapsed, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@contextmanager
def reading(path: str | Path, expected: str) -> Iterator[None]:
    """Turn any failure in the block (reading and checking ``path``) into one :class:`BadFile`.

    A ``BadFile`` raised inside is passed on as it is (it names its own file); everything else is described
    in our words. Only ``Exception`` is caught: Ctrl-C still stops the program."""
    try:
        yield
    except BadFile:
        raise
    except Exception as err:
        raise BadFile(path, describe(err), expected) from err


def describe(err: BaseException) -> str:
    """What went wrong, in words that suggest no unsafe work-around (torch and numpy's messages do)."""
    import pickle
    import zipfile

    name = type(err).__name__
    if isinstance(err, EOFError):
        return "the file ends early (empty or truncated)"
    if isinstance(err, (pickle.UnpicklingError, zipfile.BadZipFile)) or "pickle" in str(err).lower():
        return (f"unreadable or unsafe content ({name}): not the expected format, or it holds Python objects, "
                "which are never loaded because loading them can run code")  # fmt: skip
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 text (binary data at byte {err.start})"
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    if isinstance(err, KeyError):
        return f"the entry {err.args[0]!r} is missing" if err.args else "an entry is missing"
    if isinstance(err, FileNotFoundError):
        return f"{err.filename} is missing" if err.filename else f"a file is missing ({err})"
    if isinstance(err, OSError):  # torch's zip reader on a cut-off file: "[Errno 22] Invalid argument"
        return f"cannot be read: truncated or corrupt ({name}: {err.strerror or err})"
    if isinstance(err, ValueError) and str(err):
        return str(err)
    return f"{name}: {err}" if str(err) else name


def check_nonempty(path: str | Path, expected: str) -> Path:
    """``path`` as a Path after checking that it is a file with content (FileNotFoundError / BadFile)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected {expected}")
    if path.stat().st_size == 0:
        raise BadFile(path, "the file is empty", expected)
    return path


def read_json(path: str | Path, expected: str) -> Any:
    """A JSON file's content; any problem is one :class:`BadFile` line."""
    path = check_nonempty(path, expected)
    with reading(path, expected):
        return json.loads(path.read_bytes().decode("utf-8"))
