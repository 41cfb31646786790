// A bench file (YAML): what a lab bench or a line station is, written once and named with
// `idevid run --bench FILE`. Every key is optional; flags given on the command line win.
//
//   target: device:/dev/tpmrm0        # swtpm | abrmd | any TCTI
//   station: LAB-07
//   provision: false                  # false: test the identity already in the TPM
//   factory: /srv/factory             # the factory to provision with (provision: true)
//   factory_ca: factory-ca.pem        # the chain the unit's idev-id must reach
//   unit: {serial: CW0000000001, model: SRX4300}   # provisioned, or expected when kept
//   suites: [boot-load, verify-refusal, ssli-tpm, ssli-file, negative, performance]
//   report: reports/lab-07
//   limits: {handshake_tpm_p95_ms: 400, sign_p95_ms: 300}
//
// Relative paths are relative to the file's directory.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace idevid {

struct BenchFile {
  std::optional<std::string> target;
  std::optional<std::string> station;
  std::optional<bool> provision;
  std::optional<std::string> factory;
  std::optional<std::string> factory_ca;
  std::optional<std::string> serial;
  std::optional<std::string> model;
  std::vector<std::string> suites;
  std::optional<std::string> report;
  std::map<std::string, double> limits;  // keys checked against PerformanceLimits
};

// Parses bench-file text; `name` (the file) and `base` (where relative paths start) are for
// errors and paths; `known_suites`, when not empty, are the suite names it may list. Bad input
// is a kConfig error naming the file, line and column and what was expected: kSyntax (not YAML,
// not a mapping), kUnknownStatement (a key or limit), kReference (a suite), kBadValue (a value of
// the wrong type or range), kConflict (a key given twice).
Result<BenchFile> ParseBenchFile(const std::string& text, const std::string& name,
                                 const std::filesystem::path& base,
                                 const std::vector<std::string>& known_suites = {});

// Reads and parses a bench file; a file that cannot be read is a kIo error.
Result<BenchFile> LoadBenchFile(const std::filesystem::path& path,
                                const std::vector<std::string>& known_suites = {});

}  // namespace idevid
