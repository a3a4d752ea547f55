#!/usr/bin/env bash
# Builds the DocC documentation of every library module (one combined archive, with the
# catalog Sources/QuantKit/QuantKit.docc), then lists public symbols declared in QuantKit that
# have no documentation comment; exits 1 if there is any. (Members a type inherits from a
# protocol's default implementation — `!=`, `hashValue`, `init(from:)`, `next(upperBound:)` … —
# are documented by the standard library and not counted.)
#   scripts/docs.sh            → .build/plugins/Swift-DocC/outputs/QuantKit.doccarchive
set -euo pipefail
cd "$(dirname "$0")/.."
modules=(QuantKit QuantCore SafeTensors Packing GPTQ AWQ LanguageModel QuantPipeline)
targets=()
for t in "${modules[@]}"; do targets+=(--target "$t"); done
swift package --disable-sandbox generate-documentation "${targets[@]}" --enable-experimental-combined-documentation 2>&1 \
  | grep -E "Generated combined|error:" || true
inherited='Implementations|/(!=|==|<=|>=|>|<|\.\.\.|\.\.<)\(|/(_|\.\.)\(|/hashValue$|/hash\(into:\)|/init\(from:\)|/encode\(to:\)|/localizedDescription$|/init\(rawValue:\)|/rawValue$|/next\(\)-|/next\(upperBound:\)'
missing=$(for t in "${modules[@]}"; do
  swift package --disable-sandbox generate-documentation --target "$t" --experimental-documentation-coverage \
      --coverage-summary-level detailed 2>&1 \
    | awk -F'|' '/^\S.*\| (Instance|Type|Enumeration|Initializer|Operator|Global|Structure|Class|Protocol|Case|Typealias|Subscript)/ && $3 ~ /false/ {print $NF}'
done | grep -vE "$inherited" | sed 's|.*/documentation/||' || true)
if [ -n "$missing" ]; then
  echo "public symbols without documentation:"; echo "$missing"; exit 1
fi
echo "documentation: every public symbol of ${modules[*]} is documented"
