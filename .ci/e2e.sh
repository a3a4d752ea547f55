#!/usr/bin/env bash
# End-to-end check on the real SmolLM2-135M fixture with the release binary: every method
# quantizes with a small calibration (16 × 256 tokens), every written checkpoint passes
# `quantkit verify` (byte-exact layouts against the original) and its perplexity on the first
# two 2048-token windows of eval.txt stays within bounds that a broken pipeline would miss.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${QUANTKIT_FIXTURE_DIR:?set QUANTKIT_FIXTURE_DIR to the fixture folder}"
BIN=.build/release/quantkit
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

swift build -c release --product quantkit $(.ci/swift-flags) 2>&1 | tail -1
ppl() { "$BIN" eval --model "$1" --text "data/eval.txt" --windows 2 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])'; }

fp=$(ppl "$MODEL")
echo "fp16 perplexity (2 windows): $fp"
failed=0
rtn=""
# method  format              grid
for spec in "rtn gptq-v2 --asym" "gptq gptq --sym" "gptq compressed-tensors --asym" "awq awq --asym" "awq-gptq gptq-v2 --asym"; do
  set -- $spec
  extra=""
  case "$1" in awq*) extra="--awq-search-tokens 1024" ;; esac
  out="$WORK/runs/$1-$2"  # runs/ does not exist yet: quantize creates it, as in a fresh clone
  start=$(date +%s)
  "$BIN" quantize --model "$MODEL" --calib "data/calib.txt" --samples 16 --seqlen 256 --method "$1" --format "$2" "$3" \
      --group-size 64 --out "$out" $extra --quiet > "$WORK/log" || { cat "$WORK/log"; echo "FAIL: quantize $spec"; failed=1; continue; }
  "$BIN" verify "$out" --reference "$MODEL" || { echo "FAIL: verify $spec"; failed=1; continue; }
  p=$(ppl "$out")
  secs=$(( $(date +%s) - start ))
  [ "$1" = rtn ] && rtn=$p
  verdict=$(python3 -c "
fp, p, rtn, method = $fp, $p, float('${rtn:-inf}'), '$1'
ok = p < 1.5 * fp and (method == 'rtn' or p <= 1.01 * rtn)
print('ok' if ok else 'FAIL')")
  echo "$verdict: $spec perplexity $p (fp16 $fp, rtn ${rtn:-n/a}) in ${secs}s"
  [ "$verdict" = ok ] || failed=1
done
# Every other family through the command line: its tiny transformers checkpoint (with a small
# byte-level tokenizer), GPTQ and AWQ with their default grids and layouts, verify, and eval.
for dir in Tests/Fixtures/families/*/; do
  family=$(basename "$dir")
  cp -r "$dir" "$WORK/$family" && cp Fuzz/Corpus/FuzzTokenizer/byte-level.json "$WORK/$family/tokenizer.json"
  tiny() { "$BIN" eval --model "$1" --text data/eval.txt --seqlen 128 --windows 3 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])'; }
  base=$(tiny "$WORK/$family")
  for method in gptq awq; do
    out="$WORK/$family-$method"
    if "$BIN" quantize --model "$WORK/$family" --calib data/calib.txt --samples 8 --seqlen 64 --method $method --group-size 16 \
         --out "$out" --quiet > "$WORK/log" 2>&1 && "$BIN" verify "$out" --reference "$WORK/$family" > /dev/null; then
      p=$(tiny "$out")
      verdict=$(python3 -c "print('ok' if abs($p / $base - 1) < 0.1 else 'FAIL')")
      echo "$verdict: $family $method: verify passed, perplexity $p (unquantized $base)"
      [ "$verdict" = ok ] || failed=1
    else
      cat "$WORK/log"; echo "FAIL: $family $method"; failed=1
    fi
  done
done
# Interrupted runs: SIGKILL and SIGINT part-way through, then --resume; every output file must be
# byte-identical to an uninterrupted run's (the report's sha256 list), the destination untouched meanwhile.
args=(--model "$MODEL" --calib data/calib.txt --samples 16 --seqlen 256 --method gptq --group-size 64 --asym --checkpoint-interval 0)
"$BIN" quantize "${args[@]}" --out "$WORK/whole" --quiet > /dev/null
[ -f "$WORK/whole/quantkit-report.json" ] || { echo "FAIL: the uninterrupted run wrote no report"; exit 1; }
digests() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["output_sha256"], sort_keys=True))' "$1/quantkit-report.json"; }
for signal in KILL INT; do
  out="$WORK/stopped-$signal"
  # A progress file per run: the loop must not see the previous run's "block 12/30".
  progress="$WORK/progress-$signal"
  "$BIN" quantize "${args[@]}" --out "$out" > /dev/null 2> "$progress" & pid=$!
  while ! grep -q "block 12/30" "$progress" 2>/dev/null; do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill -$signal $pid; wait $pid 2>/dev/null || true
  if [ -e "$out" ] || [ ! -f "$out.partial/resume.json" ]; then
    tail -3 "$progress"; ls -la "$WORK" "$out.partial" 2>&1
    echo "FAIL: SIG$signal left $out or no checkpoint"; failed=1; continue
  fi
  "$BIN" quantize "${args[@]}" --out "$out" --resume --quiet > /dev/null || { echo "FAIL: --resume after SIG$signal"; failed=1; continue; }
  if [ "$(digests "$out")" = "$(digests "$WORK/whole")" ] && [ ! -e "$out.partial" ]; then
    echo "ok: SIG$signal at block 12, resumed: every file identical to the uninterrupted run's"
  else
    echo "FAIL: resumed output after SIG$signal differs from the uninterrupted run's"; failed=1
  fi
done
# A first SIGINT during `eval` stops it at the next block with a message, no result, exit status 1.
"$BIN" eval --model "$MODEL" --text data/eval.txt --windows 4 > "$WORK/eval-out" 2> "$WORK/eval-progress" & pid=$!
while ! grep -q "block 5/30" "$WORK/eval-progress" 2>/dev/null; do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -INT $pid 2>/dev/null || true; status=0; wait $pid 2>/dev/null || status=$?
if [ "$status" = 1 ] && grep -q "interrupted by SIGINT" "$WORK/eval-progress" && [ ! -s "$WORK/eval-out" ]; then
  echo "ok: SIGINT during eval: $(grep -o "interrupted by SIGINT.*" "$WORK/eval-progress" | cut -c1-80)"
else
  tail -3 "$WORK/eval-progress"; echo "FAIL: eval after SIGINT exited $status"; failed=1
fi
# A full disk (stood in for by a 40 MB file-size limit, SIGXFSZ ignored so writes fail with EFBIG):
# the run fails naming the file, and an existing destination it was to replace (--force) is untouched.
[ -f "$WORK/whole/quantkit-report.json" ] || { ls -la "$WORK" "$WORK/whole" 2>&1; echo "FAIL: $WORK/whole lost its report"; exit 1; }
before=$(digests "$WORK/whole"); listing=$(ls "$WORK/whole")
if (trap '' XFSZ; ulimit -f 40000; "$BIN" quantize "${args[@]}" --out "$WORK/whole" --force --quiet > /dev/null 2> "$WORK/full"); then
  echo "FAIL: a run that could not write its output succeeded"; failed=1
elif grep -q "model.safetensors" "$WORK/full" && [ "$(digests "$WORK/whole")" = "$before" ] && [ "$(ls "$WORK/whole")" = "$listing" ]; then
  echo "ok: a write failure part-way ($(tail -1 "$WORK/full" | cut -c1-90)) left the destination as it was"
else
  cat "$WORK/full"; echo "FAIL: a failed write changed the destination or did not name the file"; failed=1
fi
[ "$failed" = 0 ] && echo "1 passed, 0 failed: end-to-end" || { echo "0 passed, 1 failed: end-to-end"; exit 1; }
