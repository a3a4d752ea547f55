#!/usr/bin/env bash
# Builds the DocC documentation of every library module (one combined archive, with the
# catalog Sources/QuantKit/QuantKit.docc) and prints the documentation coverage per module.
#   scripts/docs.sh            → .build/plugins/Swift-DocC/outputs/QuantKit.doccarchive
set -euo pipefail
cd "$(dirname "$0")/.."
targets=()
for t in QuantKit QuantCore SafeTensors Packing GPTQ AWQ LanguageModel QuantPipeline; do targets+=(--target "$t"); done
swift package --disable-sandbox generate-documentation "${targets[@]}" --enable-experimental-combined-documentation \
    --experimental-documentation-coverage --coverage-summary-level brief 2>&1 \
  | grep -E "^(Types|Members|Globals)|Finished building|Generated combined|error" || true
