#!/usr/bin/env bash
# Installs a release wheel (default: the newest manylinux wheel in dist/) with its test extra
# into a brand-new venv and runs tests/python against it, from a directory outside the source
# tree, so only the installed package can be imported (checked before the run).
#
#   tools/test_release_wheel.sh [WHEEL]
#   EXTRA_PACKAGES="torch==2.13.0" tools/test_release_wheel.sh   # also run the PyTorch tests
#   PYTHON=python3.12 tools/test_release_wheel.sh                # the wheel's interpreter
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
wheel=$(realpath "${1:-$(ls -t "$root"/dist/fastocclusion-*manylinux*.whl | head -n 1)}")
echo "== testing $wheel"

work=$(mktemp -d "${TMPDIR:-/tmp}/fastocclusion-wheeltest.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
# shellcheck disable=SC2086  # EXTRA_PACKAGES is a list of requirements
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel[test]" ${EXTRA_PACKAGES:-}

cd "$work"
# The package must come from the venv, never from $root/python.
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys, fastocclusion, fastocclusion._core as core
print("fastocclusion from", fastocclusion.__file__)
assert fastocclusion.__file__.startswith(sys.argv[1]), "not the installed wheel"
print("_core from", core.__file__)
PY
# pyproject.toml's pytest settings (importlib import mode, warnings as errors, markers).
TF_CPP_MIN_LOG_LEVEL=2 "$work/venv/bin/python" -m pytest -c "$root/pyproject.toml" \
  --rootdir "$root" -p no:cacheprovider "$root/tests/python"
