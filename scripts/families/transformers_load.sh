#!/usr/bin/env bash
# Loads QuantKit's quantized checkpoints of every tiny family fixture in Hugging Face
# transformers (compressed-tensors format, which transformers reads with the compressed-tensors
# package) and compares transformers' perplexity with `quantkit eval` on the same checkpoint:
# the fused (Phi-3) and per-expert (Mixtral, Qwen3-MoE) packing, the AWQ-scaled norms and
# routers, and every family's forward pass must agree. Too slow for CI with torch to install.
#
#   PYTHON=/path/to/python scripts/families/transformers_load.sh [METHOD ...]   default: gptq awq awq-gptq
#   needs: torch, transformers, compressed-tensors, tokenizers in PYTHON's environment
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
METHODS="${*:-gptq awq awq-gptq}"
BIN="${QUANTKIT_BIN:-}"
if [ -z "$BIN" ]; then
  swift build -c release --product quantkit $(.ci/swift-flags) 2>&1 | tail -1
  BIN=.build/release/quantkit
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The fuzzing corpus's byte-level tokenizer (ids < 512), completed so `tokenizers` reads it too.
"$PY" - "$work/tokenizer.json" <<'PY'
import json, sys
t = json.load(open("Fuzz/Corpus/FuzzTokenizer/byte-level.json"))
t["decoder"] = t["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
json.dump(t, open(sys.argv[1], "w"))
PY
printf 'family\tmethod\tquantkit\ttransformers\trelative difference\n'
for dir in Tests/Fixtures/families/*/; do
  family=$(basename "$dir")
  cp -r "$dir" "$work/$family" && cp "$work/tokenizer.json" "$work/$family/"
  # transformers 5.17 merges experts into one tensor when it loads compressed-tensors and drops
  # their weight_zero_point on the way ("Asymmetric quant requires zero-point values"), so
  # mixture-of-experts checkpoints are checked on the symmetric grid; the others on each method's own.
  grid=""
  case "$family" in mixtral|*moe*) grid="--sym" ;; esac
  for method in $METHODS; do
    out="$work/$family-$method"
    "$BIN" quantize --model "$work/$family" --calib data/calib.txt --out "$out" --method "$method" --group-size 16 $grid \
      --format compressed-tensors --samples 8 --seqlen 64 --force > /dev/null 2>&1
    ours=$("$BIN" eval --model "$out" --text data/eval.txt --seqlen 128 --windows 3 --json 2>/dev/null \
      | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])')
    theirs=$("$PY" - "$out" "$work/tokenizer.json" 2>/dev/null <<'PY'
import sys, torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM
T, W = 128, 3
ids = Tokenizer.from_file(sys.argv[2]).encode(open("data/eval.txt").read(), add_special_tokens=False).ids
x = torch.tensor(ids[:T * W]).reshape(W, T)
m = AutoModelForCausalLM.from_pretrained(sys.argv[1], attn_implementation="eager", dtype=torch.float32).eval()
with torch.no_grad():
    logits = m(input_ids=x).logits.double()
nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
print(float(torch.exp(nll)))
PY
)
    printf '%s\t%s\t%.6f\t%.6f\t%.1e\n' "$family" "$method" "$ours" "$theirs" \
      "$("$PY" -c "print(abs($ours - $theirs) / $theirs)")"
  done
done
