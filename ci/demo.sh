#!/usr/bin/env bash
# Sets up idevid and runs what the harness can do today on the embedded swtpm: start a private
# swtpm (with an EK certificate, as a TPM vendor ships it) behind tpm2-abrmd, create a factory CA,
# provision one unit, run the manufacturing-line check on it, start the device PKI daemon on it,
# show idev-id and have its local verify refused, stop everything again by pid.
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
echo "== device: pkid loads idev-id from the TPM"
cat > "$work/device.conf" <<CONF
set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000
CONF
"$idevid" pkid --state "$work/tpm" --config "$work/device.conf" --socket "$work/pkid.sock" \
  2> "$work/pkid.log" &
pkid=$!
trap 'kill $pkid 2>/dev/null; wait $pkid 2>/dev/null; "$idevid" tpm stop --state "$work/tpm" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -S "$work/pkid.sock" ] && break; sleep 0.05; done
"$idevid" cli --socket "$work/pkid.sock" show security pki node-local local-certificate detail
echo "== verify idev-id (refused by design)"
"$idevid" cli --socket "$work/pkid.sock" \
  request security pki node-local local-certificate verify certificate-id idev-id || true
echo "== records in reports/out/"
