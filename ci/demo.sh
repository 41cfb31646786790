#!/usr/bin/env bash
# Sets up idevid and runs the harness on the embedded swtpm: `idevid run` starts its own swtpm
# (with an EK certificate) behind its own tpm2-abrmd, creates a factory, provisions a unit, runs
# every suite and writes reports/out/{junit.xml,run-record.json,report.html}; it stops
# everything it started, also on Ctrl-C and on failure. Extra arguments go to `idevid run`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install-deps.sh
cmake --preset default
cmake --build --preset default -j "$(nproc)" --target idevid
exec build/default/cli/idevid run --report reports/out "$@"
