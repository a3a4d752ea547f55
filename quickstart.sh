#!/usr/bin/env bash
# Sets QuantKit up on Debian 12 and runs the main job on the real model: builds the SmolLM2-135M
# fixture, quantizes it with GPTQ (W4, group size 64, asymmetric, gptq-v2 layout) on 128 × 512
# tokens of data/calib.txt, verifies the written checkpoint and evaluates its
# perplexity on the first 16 windows of data/eval.txt next to the FP16 model's.
set -euo pipefail
cd "$(dirname "$0")"
export QUANTKIT_FIXTURE_DIR="${QUANTKIT_FIXTURE_DIR:-$HOME/.cache/quantkit/smollm2-135m}"
bash .ci/setup
swift build -c release --product quantkit $(.ci/swift-flags)
OUT="${1:-$PWD/out/smollm2-gptq-w4g64}"
.build/release/quantkit quantize --model "$QUANTKIT_FIXTURE_DIR" --calib "data/calib.txt" \
    --out "$OUT" --method gptq --bits 4 --group-size 64 --asym --format gptq-v2 --force
.build/release/quantkit verify "$OUT" --reference "$QUANTKIT_FIXTURE_DIR"
echo "FP16:      $(.build/release/quantkit eval --model "$QUANTKIT_FIXTURE_DIR" --text "data/eval.txt" --windows 16)"
echo "quantized: $(.build/release/quantkit eval --model "$OUT" --text "data/eval.txt" --windows 16)"
