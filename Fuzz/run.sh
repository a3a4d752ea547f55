#!/usr/bin/env bash
# Coverage-guided fuzzing of QuantKit's parsers with libFuzzer (+ AddressSanitizer).
#
#   bash Fuzz/run.sh [SECONDS] [HARNESS ...]     default: 600 s each; all four harnesses
#
# Harnesses (Fuzz/Sources): FuzzSafeTensors (any bytes as a safetensors file), FuzzModelConfig
# (config.json), FuzzTokenizer (tokenizer.json), FuzzQuantizationConfig (quantization_config).
# Each starts from the seeds in Fuzz/Corpus/HARNESS and keeps its growing corpus in
# ~/.cache/quantkit/fuzz/HARNESS; a crash leaves crash-* files in ~/.cache/quantkit/fuzz/ and
# makes the script exit 1. Prints one line per harness: executions, corpus size, crashes.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-600}"; shift || true
HARNESSES="${*:-FuzzSafeTensors FuzzModelConfig FuzzTokenizer FuzzQuantizationConfig}"
WORK="${QUANTKIT_FUZZ_DIR:-$HOME/.cache/quantkit/fuzz}"
# --sanitize fuzzer links libFuzzer's main; the coverage flags instrument every module (SwiftPM's
# --sanitize fuzzer alone does not pass them to the frontend).
FLAGS=(--scratch-path ../.build-fuzz --sanitize fuzzer --sanitize address
       -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table)
mkdir -p "$WORK"
status=0
for h in $HARNESSES; do
  # A build folder made before files were added to QuantKit can miss them: start it over once.
  swift build "${FLAGS[@]}" --product "$h" > "$WORK.build.log" 2>&1 \
    || { rm -rf ../.build-fuzz; swift build "${FLAGS[@]}" --product "$h" > "$WORK.build.log" 2>&1; } \
    || { tail -20 "$WORK.build.log"; exit 1; }
  mkdir -p "$WORK/$h"
  cp -n Corpus/"$h"/* "$WORK/$h"/ 2>/dev/null || true
  log="$WORK/$h.log"
  set +e
  (cd "$WORK" && SWIFT_BACKTRACE=enable=no "$OLDPWD/../.build-fuzz/debug/$h" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$WORK/$h-" "$WORK/$h" > "$log" 2>&1)
  rc=$?
  set -e
  runs=$(grep -E "^stat::number_of_executed_units" "$log" | awk "{print \$2}" || true)
  crashes=$( (ls "$WORK"/"$h"-crash-* "$WORK"/"$h"-oom-* "$WORK"/"$h"-timeout-* 2>/dev/null || true) | wc -l)
  echo "$h: ${SECONDS_EACH} s, ${runs:-?} executions, corpus $(ls "$WORK/$h" | wc -l) inputs, exit $rc, $crashes crash/oom/timeout files"
  if [ "$rc" != 0 ]; then status=1; grep -E "ERROR|Fatal error|SUMMARY|panic|Assertion" "$log" | head -5; fi
done
exit $status
