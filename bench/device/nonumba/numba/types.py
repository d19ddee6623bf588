"""The few numba types ``ast_robot.robot.kernels`` names, as ctypes types; ``ExternalFunction`` calls a C
function of a library loaded by ``llvmlite.binding.load_library_permanently`` (this folder's stand-in)."""

import ctypes

intp = ctypes.c_ssize_t
int32 = ctypes.c_int32


class _Signature:
    def __init__(self, restype, argtypes):
        self.restype, self.argtypes = restype, list(argtypes)


def void(*argtypes):
    return _Signature(None, argtypes)


class ExternalFunction:
    """A C function found by symbol in the permanently loaded libraries, called with ints (addresses)."""

    def __init__(self, name, signature):
        self.name, self.signature, self._fn = name, signature, None

    def _resolve(self):
        from llvmlite.binding import LOADED

        for lib in reversed(LOADED):
            fn = getattr(lib, self.name, None)
            if fn is not None:
                fn.restype, fn.argtypes = self.signature.restype, self.signature.argtypes
                return fn
        raise ImportError(f"nonumba: symbol {self.name} not found in {[lib._name for lib in LOADED]}")

    def __call__(self, *args):
        if self._fn is None:
            self._fn = self._resolve()
        return self._fn(*(int(a) for a in args))
