"""``load_library_permanently`` as ctypes: the library stays loaded (RTLD_GLOBAL) and numba's stand-in
``types.ExternalFunction`` finds symbols in it."""

import ctypes

LOADED: list = []


def load_library_permanently(path):
    LOADED.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
