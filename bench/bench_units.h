// What the benchmarks that make units share: serials never issued before in the run, a ledger's
// refusal as the benchmark's failure, and the retirement of a unit so that its station's TPM may
// take the next serial.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

#include "core/ledger.h"
#include "core/result.h"

namespace idevid {

// "<prefix><6 digits>", a serial no earlier call of this run returned.
std::string NextBenchSerial(const std::string& prefix);

// A refusal of the ledger or the factory as an error: the unit was refused (kVerify).
Error RefusalError(const std::string& serial, const std::string& reason, const std::string& detail);

// Revokes `serial` as superseded, as a rework station does, outside the timed part: a ledger lets
// a TPM take a new serial only once its earlier unit is revoked. A refusal is an error.
Result<void> RetireUnit(benchmark::State& state, Ledger& ledger, const std::string& serial);

}  // namespace idevid
