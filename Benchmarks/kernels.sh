#!/usr/bin/env bash
# OpenBLAS kernel choice, side by side in one run: quantkit's automatic choice (OPENBLAS_CORETYPE
# unset), the best kernels set by hand, and OpenBLAS's own choice (QUANTKIT_BLAS_AUTOSELECT=0).
# For each: the core in use, the sgemm rate and `quantkit eval` throughput on the SmolLM2
# fixture, as medians of ROUNDS rounds that alternate the settings (a shared VM's speed drifts).
#   bash Benchmarks/kernels.sh [MODEL_DIR] [WINDOWS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-$HOME/.cache/quantkit/smollm2-135m}"
WINDOWS="${2:-2}"
ROUNDS="${3:-5}"
swift build -c release --product quantkit $(.ci/swift-flags) 2>&1 | tail -1
BIN=.build/release/quantkit
best=$(env -u OPENBLAS_CORETYPE "$BIN" env --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["recommended_core"] or "")')
labels=("automatic (OPENBLAS_CORETYPE unset)" "OPENBLAS_CORETYPE=$best set by hand" "OpenBLAS's own choice (QUANTKIT_BLAS_AUTOSELECT=0)")
settings=("-u OPENBLAS_CORETYPE" "OPENBLAS_CORETYPE=$best" "-u OPENBLAS_CORETYPE QUANTKIT_BLAS_AUTOSELECT=0")
results="$(mktemp)"
for round in $(seq "$ROUNDS"); do
  for k in 0 1 2; do
    # shellcheck disable=SC2086
    core_rate=$(env ${settings[$k]} "$BIN" env --json --sgemm | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["environment"]["blas_core"], d["sgemm_gflops"])')
    # shellcheck disable=SC2086
    tps=$(env ${settings[$k]} "$BIN" eval --model "$MODEL" --text data/eval.txt --windows "$WINDOWS" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')
    echo "$k $core_rate $tps" >> "$results"
  done
done
echo "| setting | OpenBLAS core | sgemm 2048³ GFLOP/s | eval tokens/s ($WINDOWS × 2048) | vs. set by hand |"
echo "|---|---|---|---|---|"
python3 - "$results" "${labels[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
labels = sys.argv[2:]
med = {k: (next(r[1] for r in rows if int(r[0]) == k), statistics.median(float(r[2]) for r in rows if int(r[0]) == k),
           statistics.median(float(r[3]) for r in rows if int(r[0]) == k)) for k in range(3)}
for k in range(3):
    core, rate, tps = med[k]
    print(f"| {labels[k]} | {core} | {rate:.0f} | {tps:.1f} | {100 * tps / med[1][2]:.0f} % |")
PY
