// `idevid run --parallel N`: N units at once on one machine, each an `idevid run` process of
// its own (its own swtpm and tpm2-abrmd, serial and report directory), and one summary.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace idevid::cli {

// The serial of unit k (0-based) of a batch starting at `base`: its trailing digits counted up
// by k with their width kept ("CW0009" -> "CW0010"); without trailing digits, "-k+1" appended.
std::string NthSerial(const std::string& base, int k);

struct ParallelRun {
  int units = 1;
  std::filesystem::path report;                         // unit k writes to report/unit-<k+1>/
  std::function<std::vector<std::string>(int k)> args;  // unit k's arguments after `idevid run`
  std::function<bool()> interrupted;                    // polled; true forwards SIGINT to all
};

// Starts every unit, reports each as it ends, writes report/units.json atomically and returns
// the worst exit code (2 infrastructure or interrupted, then 1 failed, then 0). Every unit is
// stopped by pid before it returns.
int RunUnitsInParallel(const ParallelRun& run);

}  // namespace idevid::cli
