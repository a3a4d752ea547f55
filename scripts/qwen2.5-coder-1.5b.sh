#!/usr/bin/env bash
# The 1.5B model end to end (too slow for CI): builds the Qwen2.5-Coder-1.5B fixture, evaluates
# it (first 4 windows of 2048 tokens of data/eval.txt; transformers gives 6.6354), quantizes it
# with every method at W4 g128, symmetric and asymmetric, on 128 × 512 calibration tokens,
# verifies each checkpoint byte by byte and evaluates it. Prints one row per run (perplexity,
# seconds, peak RSS, the predicted peak) and writes them to OUT/results.tsv. Runs whose row is
# already in OUT/results.tsv are skipped, and an interrupted run (Ctrl-C, a reboot) continues from
# its last completed block (`--resume`) when the script is started again with the same arguments.
# RTN runs without calibration text (its output does not depend on it; GPTQ's and AWQ's do).
#
#   scripts/qwen2.5-coder-1.5b.sh [OUT_DIR] [METHOD ...]     default: out/qwen2.5-coder-1.5b; rtn gptq awq awq-gptq
#   GRIDS="asym" scripts/qwen2.5-coder-1.5b.sh …             only these grids (default: sym asym)
#   QUANTKIT_BIN=/path/to/quantkit scripts/qwen2.5-coder-1.5b.sh …   use this binary, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/qwen2.5-coder-1.5b}"; shift || true
METHODS="${*:-rtn gptq awq awq-gptq}"
MODEL="${QWEN_FIXTURE_DIR:-$HOME/.cache/quantkit/qwen2.5-coder-1.5b}"
bash .ci/setup >/dev/null
bash scripts/fixtures/build.sh qwen2.5-coder-1.5b "$MODEL"
BIN="${QUANTKIT_BIN:-}"
if [ -z "$BIN" ]; then
  swift build -c release --product quantkit $(.ci/swift-flags) 2>&1 | tail -1
  BIN=.build/release/quantkit
fi
mkdir -p "$OUT"
"$BIN" env | tee "$OUT/env.txt"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
ppl() { "$BIN" eval --model "$1" --text data/eval.txt --windows 4 --json > "$2"; field "$2" perplexity; }
if [ ! -f "$OUT/results.tsv" ]; then
  printf 'method\tgrid\tperplexity\tseconds\tpeak_rss_gib\tpredicted_gib\tphases\n' > "$OUT/results.tsv"
  printf 'fp16\t-\t%s\t-\t-\t-\t-\n' "$(ppl "$MODEL" "$OUT/eval-fp16.json")" >> "$OUT/results.tsv"
fi
for method in $METHODS; do
  for grid in ${GRIDS:-sym asym}; do
    dir="$OUT/$method-w4g128-$grid"
    if grep -q "^$method	$grid	" "$OUT/results.tsv"; then echo "$method $grid: done before (in $OUT/results.tsv)"; continue; fi
    calib=(--calib data/calib.txt); [ "$method" = rtn ] && calib=()
    "$BIN" quantize --model "$MODEL" "${calib[@]}" --out "$dir" --method "$method" --group-size 128 --"$grid" --force --resume >> "$OUT/$method-$grid.log"
    "$BIN" verify "$dir" --reference "$MODEL" > /dev/null
    report="$dir/quantkit-report.json"
    p=$(ppl "$dir" "$OUT/eval-$method-$grid.json")
    python3 - "$report" "$method" "$grid" "$p" >> "$OUT/results.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
phases = " ".join(f"{k}={v:.0f}" for k, v in r["phase_seconds"].items() if v >= 0.5)
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sys.argv[4]}\t{r['total_seconds']:.0f}\t{r['peak_resident_bytes'] / 2**30:.2f}\t{r['estimated_peak_bytes'] / 2**30:.2f}\t{phases}")
PY
    tail -1 "$OUT/results.tsv"
  done
done
column -t "$OUT/results.tsv"
