#!/usr/bin/env bash
# Sets up idevid and shows what it can do today on the embedded swtpm: start a private swtpm
# behind tpm2-abrmd, report what the TPM says about itself, stop everything again by pid.
# (`idevid run`, the full harness, replaces this once it exists.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install-deps.sh
cmake --preset default
cmake --build --preset default -j "$(nproc)" --target idevid
idevid=build/default/harness/cli/idevid

state=$(mktemp -d -t idevid-demo-XXXXXX)
trap '"$idevid" tpm stop --state "$state" || true; rm -rf "$state"' EXIT
echo "TPM started: $("$idevid" tpm start --state "$state" --abrmd 2>/dev/null)"
"$idevid" tpm info --state "$state"
