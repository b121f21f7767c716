#!/usr/bin/env bash
# Builds the fuzzers (clang, libFuzzer, ASan+UBSan) in build-fuzz, seeds their corpora with valid
# input, and fuzzes each for a while: the control plane's wire format (atoll_wire_fuzz) and the
# data plane's decoders, handshakes and receive path (atoll_data_fuzz).
#   scripts/fuzz.sh                      # 30 seconds each
#   ATOLL_FUZZ_SECONDS=600 scripts/fuzz.sh
#   ATOLL_BUILD_JOBS=1 scripts/fuzz.sh   # limit build parallelism
# The corpora (build-fuzz/corpus, build-fuzz/corpus-data) grow across runs; crashes land in
# build-fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh clang libclang-rt-14-dev

seconds=${ATOLL_FUZZ_SECONDS:-30}
build=build-fuzz

mkdir -p "$build"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DATOLL_BUILD_FUZZERS=ON \
  -DATOLL_BUILD_TESTS=OFF -DATOLL_BUILD_BENCHMARKS=OFF -DATOLL_BUILD_EXAMPLES=OFF \
  -DATOLL_WITH_CUDA=OFF -DATOLL_WITH_UCX=OFF > "$build/configure.log" 2>&1 || {
  cat "$build/configure.log"
  exit 1
}
rm -f "$build/configure.log"
cmake --build "$build" --target atoll_wire_fuzz atoll_wire_seeds atoll_data_fuzz atoll_data_seeds \
  ${ATOLL_BUILD_JOBS:+-j "$ATOLL_BUILD_JOBS"}

mkdir -p "$build/corpus" "$build/corpus-data" "$build/artifacts"
"$build/tests/fuzz/atoll_wire_seeds" "$build/corpus" > /dev/null
"$build/tests/fuzz/atoll_data_seeds" "$build/corpus-data" > /dev/null

# fuzz NAME CORPUS MAX_LEN: runs one fuzzer for $seconds and reports.
fuzz() {
  local name=$1 corpus=$2 max_len=$3
  local log="$build/$name.log"
  local status=0
  "$build/tests/fuzz/$name" "$corpus" -max_total_time="$seconds" -max_len="$max_len" \
    -artifact_prefix="$build/artifacts/" > "$log" 2>&1 || status=$?
  local runs stats
  runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || true)
  stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' ||
    true)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $name ok: ${runs:-?} runs in ${seconds}s, ${stats:-no stats}" \
      "(corpus $corpus, log $log)"
  else
    local artifacts
    artifacts=$(ls -t "$build/artifacts" | tr '\n' ' ')
    echo "fuzz: $name FAILED (exit $status), ${stats:-no stats}; artifacts (newest" \
      "first): ${artifacts}; replay: $build/tests/fuzz/$name $build/artifacts/FILE" \
      "(log $log)"
    grep -m 5 -E 'ERROR|SUMMARY|terminate|what\(\)|description' "$log" >&2 || true
    exit "$status"
  fi
}

fuzz atoll_wire_fuzz "$build/corpus" 65536
fuzz atoll_data_fuzz "$build/corpus-data" 300000
