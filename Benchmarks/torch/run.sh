#!/bin/bash
# PyTorch reference GPTQ vs QuantKit on this CPU, same shapes, same thread count, one session.
#   bash Benchmarks/torch/run.sh [--quick]
# Installs the CPU build of torch from PyPI into ~/.cache/quantkit-torch (about 200 MB) if needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${QUANTKIT_TORCH_DIR:-$HOME/.cache/quantkit-torch}"
if ! PYTHONPATH="$target" python3 -c "import torch" 2>/dev/null; then
    pip install --quiet --target "$target" "torch==2.13.0+cpu"
fi
cd "$here/.."
swift build -c release --product quantkit-bench $(../.ci/swift-flags) >/dev/null
json="$(mktemp -d)/layer.json"
.build/release/quantkit-bench layer --threads 2 --json "$json" "$@"
PYTHONPATH="$target" python3 "$here/gptq_reference.py" --threads 2 --swift-json "$json" "$@"
