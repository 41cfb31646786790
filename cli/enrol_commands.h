// A unit at a line station from the command line: `idevid provision` (the IDevID alone, or TCG
// enrolment in-process with --factory DIR --tpm-vendor-ca FILE, or against a service with
// --factory https://HOST:PORT), each ending with the line check and the unit committed in the
// ledger; and `idevid factory serve` (the enrolment authority as an HTTPS service).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/tpm_args.h"

namespace idevid::cli {

// What `idevid provision` was given for an enrolment.
struct EnrolArgs {
  TpmArgs tpm;
  std::string factory;  // DIR or https://HOST:PORT
  std::vector<std::string> tpm_vendor_cas;
  std::string factory_ca;      // trust for the service (factory-ca.pem)
  std::string factory_tls_ca;  // another CA for the service's TLS certificate
  std::string station_cert;
  std::string station_key;
  std::string serial;
  std::string model;
  std::string key_alg = "ecc-p256";
  std::string handle = "0x81020000";
  std::string nv_index;  // by --nv-layout when empty
  std::string iak_handle = "0x81020001";
  std::string iak_nv_index = "0x01C90100";
  std::string nv_layout = "default";
  std::string record;
  std::string station;
  std::string ledger;           // --ledger SPEC; empty = the factory's
  std::string pkcs11_pin_file;  // the token's PIN file, for a factory DIR whose keys are in one
  bool force = false;
  bool json = false;
};

// The IDevID certificate's NV index: `nv_index` when given, else the --nv-layout's.
std::string IdevidNvIndexText(const std::string& nv_index, const std::string& layout);

// True when `args` ask for TCG enrolment rather than the local IDevID-only provisioning.
bool WantsEnrolment(const EnrolArgs& args);

// Runs the enrolment; returns the exit code (0 enrolled and the line check passed, 1 refused or
// the line check failed, 2 infrastructure, 4 usage).
int Enrol(const EnrolArgs& args);

// Provisions the IDevID alone (no IAK) from the factory directory, with the same exit codes.
int ProvisionIdevid(const EnrolArgs& args);

// Adds the enrolment and ledger options of `idevid provision` to `cmd`.
void AddEnrolOptions(CLI::App& cmd, EnrolArgs& args);

// Adds `idevid factory serve` to `factory`.
void AddFactoryServe(CLI::App& factory, int* exit_code);

}  // namespace idevid::cli
