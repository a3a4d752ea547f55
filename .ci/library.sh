#!/usr/bin/env bash
# The library interfaces, checked against the command line: builds libQuantKitC.so, compiles and
# runs the C example (Examples/c), installs the Python package into a virtual environment
# (numpy, pytest from PyPI) and runs its tests. Needs the release `quantkit` (built by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
FIXTURE="${QUANTKIT_FIXTURE_DIR:-$HOME/.cache/quantkit/smollm2-135m}"
swift build -c release --product QuantKitC $(.ci/swift-flags) 2>&1 | tail -1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "-- C example"
cc -std=c11 -Wall -Wextra -Werror -I Sources/CQuantKit/include Examples/c/quantize_layer.c \
   -L .build/release -lQuantKitC -Wl,-rpath,"$PWD/.build/release" -lm -o "$work/quantize_layer"
mkdir -p "$work/c"
"$work/quantize_layer" "$work/c" .build/release/quantkit "$FIXTURE"

echo "-- Python package"
VENV="${QUANTKIT_PYTHON_VENV:-$HOME/.cache/quantkit/venv-python}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check numpy pytest
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./python
rm -rf python/build python/*.egg-info
(cd "$work" && QUANTKIT_BIN="$OLDPWD/.build/release/quantkit" QUANTKIT_FIXTURE_DIR="$FIXTURE" "$VENV/bin/python" -m pytest -q "$OLDPWD/python/tests")
