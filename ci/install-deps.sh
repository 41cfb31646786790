#!/usr/bin/env bash
# Installs every Debian package idevid-harness needs to build, test and run.
# Idempotent: packages already present are left alone; apt lists are refreshed only when needed.
set -euo pipefail

packages=(
  # build tools
  build-essential cmake ninja-build pkg-config git
  # crypto, TLS and TPM access
  libssl-dev openssl
  libtss2-dev libtss2-tctildr0 libtss2-tcti-swtpm0 libtss2-tcti-mssim0 libtss2-tcti-device0
  libtss2-tcti-tabrmd0 libtss2-tcti-cmd0
  # TPM simulator, resource manager and independent peers
  swtpm swtpm-tools tpm2-tools tpm2-abrmd tpm2-openssl dbus
  # libraries named in the design
  libcli11-dev libexpected-dev nlohmann-json3-dev libpugixml-dev libyaml-cpp-dev
  libfmt-dev libspdlog-dev
  # the factory's enrolment service and its client (HTTPS)
  libcpp-httplib-dev
  # the ledger (SQLite, PostgreSQL 15 started privately by the tests) and the CA key in an HSM
  # (PKCS#11 through p11-kit's headers and proxy module; SoftHSM2 as the token; pkcs11-tool from opensc)
  libsqlite3-dev sqlite3 libpq-dev postgresql libp11-kit-dev p11-kit-modules softhsm2 opensc
  # fuzzing (libFuzzer comes with clang's runtime); the house style's formatter
  clang libclang-rt-14-dev clang-format
  # tests and benchmarks; JUnit schema validation; the HTML report rendered in headless Chromium;
  # curl and Python's ssl and xml as the third-party peers and JUnit reader the tests use
  libgtest-dev libgmock-dev libbenchmark-dev libxml2-utils chromium libpng-dev curl python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
