"""Stand-in for numba (bench/device/nonumba/README.md): ``njit`` returns the function unchanged."""

from . import types  # noqa: F401  (``from numba import types``)


def njit(*args, **kwargs):
    """``@njit`` and ``@njit(cache=True, ...)`` alike: the plain Python function."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda fn: fn


jit = njit
