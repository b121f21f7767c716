#!/usr/bin/env bash
# Builds the wire-format fuzzer (clang, libFuzzer, ASan+UBSan) in build-fuzz, seeds a corpus with
# valid frames of every message type, and fuzzes for a while.
#   scripts/fuzz.sh                      # 30 seconds
#   ATOLL_FUZZ_SECONDS=600 scripts/fuzz.sh
#   ATOLL_BUILD_JOBS=1 scripts/fuzz.sh   # limit build parallelism
# The corpus (build-fuzz/corpus) grows across runs; crashes land in build-fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh clang libclang-rt-14-dev

seconds=${ATOLL_FUZZ_SECONDS:-30}
build=build-fuzz

mkdir -p "$build"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DATOLL_BUILD_FUZZERS=ON \
  -DATOLL_BUILD_TESTS=OFF -DATOLL_BUILD_BENCHMARKS=OFF -DATOLL_BUILD_EXAMPLES=OFF \
  -DATOLL_WITH_CUDA=OFF > "$build/configure.log" 2>&1 || {
  cat "$build/configure.log"
  exit 1
}
rm -f "$build/configure.log"
cmake --build "$build" --target atoll_wire_fuzz atoll_wire_seeds \
  ${ATOLL_BUILD_JOBS:+-j "$ATOLL_BUILD_JOBS"}

mkdir -p "$build/corpus" "$build/artifacts"
"$build/tests/fuzz/atoll_wire_seeds" "$build/corpus" > /dev/null

log="$build/fuzz.log"
status=0
"$build/tests/fuzz/atoll_wire_fuzz" "$build/corpus" -max_total_time="$seconds" -max_len=65536 \
  -artifact_prefix="$build/artifacts/" > "$log" 2>&1 || status=$?

runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || true)
stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' ||
  true)
if [ "$status" -eq 0 ]; then
  echo "fuzz: atoll_wire_fuzz ok: ${runs:-?} runs in ${seconds}s, ${stats:-no stats}" \
    "(corpus $build/corpus, log $log)"
else
  artifacts=$(ls -t "$build/artifacts" | tr '\n' ' ')
  echo "fuzz: atoll_wire_fuzz FAILED (exit $status), ${stats:-no stats}; artifacts (newest" \
    "first): ${artifacts}; replay: $build/tests/fuzz/atoll_wire_fuzz $build/artifacts/FILE" \
    "(log $log)"
  grep -m 5 -E 'ERROR|SUMMARY|terminate|what\(\)|description' "$log" >&2 || true
  exit "$status"
fi
