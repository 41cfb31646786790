#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time on its
# committed corpus (fixtures/fuzz/TARGET). A crash fails the run and leaves the input in
# build/fuzz/artifacts/. Usage: ci/fuzz.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"

bash ci/install-deps.sh
cmake --preset fuzz
cmake --build --preset fuzz -j "$(nproc)"

mkdir -p build/fuzz/artifacts
for target in config_parser operational_command bench_file inventory device_certificate tcg_csr event_log attestation_wire crl; do
  binary=$(find build/fuzz -type f -name "${target}_fuzz" -perm -u+x | head -n 1)
  work="build/fuzz/corpus/$target"
  mkdir -p "$work"
  echo "fuzz: $target for ${seconds}s"
  "$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix=build/fuzz/artifacts/"$target"- "$work" "fixtures/fuzz/$target"
done
echo "fuzz: no crash"
