#!/usr/bin/env bash
# Makes device_wheels/ (git-ignored) for bench/device/gated_pixels.py on the GPU machine (no internet there):
# the cp312 manylinux x86_64 wheels of bench/device/requirements.txt with their dependencies as pip's own
# resolver picks them for Python 3.12, setuptools + wheel (the editable install's build backend, offline),
# and egl/lib: the glvnd EGL loader (Debian 12's libegl1 + libglvnd0, from this machine) for a machine
# without libEGL.so.1. numpy, typing_extensions and packaging come along as fallbacks; the machine's own
# numpy is used when it satisfies the pins (the venv sees the system's packages).
#   bash bench/device/make_wheelhouse.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-device_wheels}"
mkdir -p "$out/egl/lib"
pyver="${PYVER:-3.12}"  # PYVER=3.11: a wheelhouse for a local rehearsal on this machine's python
tags=(--only-binary=:all: --python-version "$pyver" --implementation cp --abi "cp${pyver/./}"
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any)
pip download "${tags[@]}" -d "$out" -r bench/device/requirements.txt setuptools wheel
lib=/usr/lib/x86_64-linux-gnu
for so in libEGL.so.1 libGLdispatch.so.0 libOpenGL.so.0; do
  cp -L "$lib/$so" "$out/egl/lib/$so"
done
du -sh "$out"
