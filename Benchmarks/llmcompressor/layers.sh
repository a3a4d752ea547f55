#!/usr/bin/env bash
# `quantkit layer` (no options) against llm-compressor's GPTQ (each act-order setting) on the
# linears of block 0 of a real model, same calibration windows, errors measured the same way, on
# the calibration tokens and on as many held-out windows of data/eval.txt.
#
#   bash Benchmarks/llmcompressor/layers.sh [MODEL_DIR] [--group-size 128] [--samples 128] [--seqlen 512] [--layer-args "--gptq-refine 0"]
#
# Uses the environment run.sh installs (~/.cache/quantkit-llmc). Writes out/llmcompressor-layers/layers.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL="${1:-$HOME/.cache/quantkit/smollm2-135m}"; shift || true
VENV="${QUANTKIT_LLMC_VENV:-$HOME/.cache/quantkit-llmc}"
"$VENV/bin/python" -c "import llmcompressor, torch" 2>/dev/null || { echo "run Benchmarks/llmcompressor/run.sh once to install llm-compressor"; exit 1; }
for product in quantkit QuantKitC; do swift build -c release --product $product $(.ci/swift-flags) 2>&1 | tail -1; done
cd Benchmarks/llmcompressor
PYTHONPATH=../../python "$VENV/bin/python" layers.py --model "$MODEL" --calib ../../data/calib.txt --heldout ../../data/eval.txt \
    --quantkit ../../.build/release/quantkit --out ../../out/llmcompressor-layers "$@"
