#!/usr/bin/env bash
# Installs the dependencies, configures, builds and runs every test (unit and swtpm integration)
# in parallel. Usage: ci/test.sh [default|asan]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"

bash ci/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
