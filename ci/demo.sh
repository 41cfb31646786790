#!/usr/bin/env bash
# Sets up idevid and runs what the harness can do today on the embedded swtpm: start a private
# swtpm (with an EK certificate, as a TPM vendor ships it) behind tpm2-abrmd, create a factory CA,
# provision one unit, run the manufacturing-line check on it, stop everything again by pid.
# (`idevid run`, the full harness with its scenario suites and reports, replaces this once it
# exists.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install-deps.sh
cmake --preset default
cmake --build --preset default -j "$(nproc)" --target idevid
idevid=build/default/harness/cli/idevid

work=$(mktemp -d -t idevid-demo-XXXXXX)
trap '"$idevid" tpm stop --state "$work/tpm" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p reports/out

echo "== TPM: $("$idevid" tpm start --state "$work/tpm" --abrmd --manufacture 2>/dev/null)"
"$idevid" tpm info --state "$work/tpm"
echo "== factory"
"$idevid" factory init --dir "$work/factory"
echo "== provisioning"
"$idevid" provision --state "$work/tpm" --factory "$work/factory" \
  --serial CW9876543210 --model SRX4300 --record reports/out/provision-CW9876543210.json
echo "== line check"
"$idevid" check --state "$work/tpm" --factory-ca "$work/factory/factory-ca.pem" \
  --expect-serial CW9876543210 --expect-model SRX4300 --station demo \
  --record reports/out/check-CW9876543210.json
echo "== records in reports/out/"
