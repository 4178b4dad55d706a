#!/usr/bin/env bash
# Type stubs of the compiled modules, generated (never hand-written: hand stubs drift):
#
#   tools/generate_stubs.sh BUILD_DIR [--check]
#
# BUILD_DIR holds the built _core (and _cuda when CUDA was built) extension modules, e.g. a
# plain CMake build with -DFASTOCCLUSION_BUILD_PYTHON=ON. Writes python/fastocclusion/_core.pyi
# (and _cuda.pyi), or with --check fails when the committed stubs differ from the modules.
# PYTHON (default python3) needs numpy and pybind11-stubgen.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
check=${2:-}
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/fastocclusion-stubs.XXXXXX")
trap 'rm -rf "$work"' EXIT

cp -r "$root/python/fastocclusion" "$work/fastocclusion"
rm -f "$work"/fastocclusion/*.so
modules=()
for name in _core _cuda; do
  if compgen -G "$build/$name*.so" >/dev/null; then
    cp "$build"/$name*.so "$work/fastocclusion/"
    modules+=("fastocclusion.$name")
  fi
done
[ ${#modules[@]} -gt 0 ] || { echo "no compiled module in $build" >&2; exit 2; }
(cd "$work" && PYTHONPATH="$work" "$python" -m pybind11_stubgen "${modules[@]}" -o "$work/out" >/dev/null)
status=0
for module in "${modules[@]}"; do
  stub=${module#fastocclusion.}.pyi
  if [ "$check" = "--check" ]; then
    if ! diff -u "$root/python/fastocclusion/$stub" "$work/out/fastocclusion/$stub"; then
      echo "python/fastocclusion/$stub is stale: run tools/generate_stubs.sh $1" >&2
      status=1
    fi
  else
    cp "$work/out/fastocclusion/$stub" "$root/python/fastocclusion/$stub"
    echo "wrote python/fastocclusion/$stub"
  fi
done
exit $status
