#!/usr/bin/env bash
# QuantKit and llm-compressor side by side on one machine: GPTQ on the same model, the same
# calibration windows (QuantKit's sampler, re-implemented in Python) and the same scheme, one
# after the other, then both checkpoints evaluated by `quantkit eval` on the same windows.
#
#   bash Benchmarks/llmcompressor/run.sh [MODEL_DIR] [--group-size 64] [--asym|--sym] [--samples 128] [--seqlen 512]
#
# MODEL_DIR defaults to the SmolLM2-135M fixture. Installs the CPU build of torch and
# llmcompressor into a virtual environment at ~/.cache/quantkit-llmc (about 1 GB) when missing.
# Prints a table and writes out/llmcompressor-vs-quantkit/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL="${1:-$HOME/.cache/quantkit/smollm2-135m}"; shift || true
VENV="${QUANTKIT_LLMC_VENV:-$HOME/.cache/quantkit-llmc}"
if ! "$VENV/bin/python" -c "import llmcompressor, torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==2.13.0+cpu"
  echo "torch==2.13.0+cpu" > "$VENV/constraints.txt"
  "$VENV/bin/pip" install -q -c "$VENV/constraints.txt" "llmcompressor==0.14.0.1"
fi
swift build -c release --product quantkit $(.ci/swift-flags) 2>&1 | tail -1
OUT=out/llmcompressor-vs-quantkit
mkdir -p "$OUT"
"$VENV/bin/python" Benchmarks/llmcompressor/compare.py --model "$MODEL" --calib data/calib.txt --eval data/eval.txt \
    --quantkit .build/release/quantkit --out "$OUT" "$@"
