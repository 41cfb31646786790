// The record of one `idevid bench` run: each measured figure (a rate), each comparison of one of
// ours against its comparator from the same run as a ratio named after the comparator, the
// targets those ratios must meet, and the target TPM and host the figures belong to.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace idevid {

// One benchmark's result. Rates are totals over all its threads (concurrent clients).
struct BenchFigure {
  std::string name;       // "handshake/tls1.3/c4/ours"
  std::string unit;       // what is counted: "handshakes", "signatures", "units", ...
  double per_second = 0;  // 0 when it failed
  int threads = 1;
  std::int64_t iterations = 0;
  std::string error;         // empty on success
  std::string error_domain;  // of the error: "tls" and "verify" are the cloud's refusals
};

// What is compared with what, and the ratio it must reach. A ratio is always ours over the
// comparator as rates (higher is better): 40 means ours does 40 times as many per second.
struct ComparisonSpec {
  std::string title;             // "TPM-mode handshakes, TLS 1.3, 1 client"
  std::string ours;              // figure name
  std::string comparator;        // figure name; empty when the comparator is a fixed budget
  std::string ratio_name;        // "ratio_vs_tpm2_openssl"
  std::optional<double> target;  // minimum ratio; none: reported only
  bool gated = false;            // `--check-targets` fails when this target is missed
  double budget_per_second = 0;  // the comparator when `comparator` is empty (1/60 for 60 s)
  std::string note;              // what the target means, e.g. "overhead <= 10%"
};

enum class TargetStatus { kMet, kMissed, kNoTarget, kNotMeasured };
const char* TargetStatusName(TargetStatus s);

// One comparison of a run. What was not measured is empty (the status says why), never a zero.
struct Comparison {
  ComparisonSpec spec;
  std::optional<double> ours_per_second;        // when ours was measured
  std::optional<double> comparator_per_second;  // when the comparator was measured (or is a budget)
  std::optional<double> ratio;                  // when both were
  TargetStatus status = TargetStatus::kNotMeasured;
};

// The comparisons `idevid bench` reports, in the order of its table. `identity_algorithm` is the
// key algorithm of the target's idev-id key ("ecc-p256"), whose signer is compared with raw signing.
std::vector<ComparisonSpec> BenchComparisons(const std::string& identity_algorithm);

// Each spec evaluated against the figures of one run. A figure that is absent or failed leaves
// its comparison kNotMeasured.
std::vector<Comparison> Compare(const std::vector<ComparisonSpec>& specs,
                                const std::map<std::string, BenchFigure>& figures);

// The gated comparisons with this status: kMissed (below the target) or kNotMeasured (their
// target could not be checked).
std::vector<const Comparison*> GatesIn(const std::vector<Comparison>& comparisons, TargetStatus status);

struct BenchTarget {
  std::string kind;          // "swtpm (embedded)" or the TCTI
  std::string manufacturer;  // TPM_PT_MANUFACTURER, e.g. "IBM"
  std::string vendor_string;
  std::string firmware_version;
  std::string spec_revision;
  std::string identity_algorithm;  // of the idev-id key
};

struct BenchRecord {
  int schema_version = 1;
  std::string idevid_version;
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point ended;
  std::string host;  // "2 cores, Linux 6.1.0"
  std::string mode;  // "full" or "quick"
  double min_time_seconds = 0;
  BenchTarget target;
  std::vector<BenchFigure> figures;
  std::vector<Comparison> comparisons;
};

}  // namespace idevid
