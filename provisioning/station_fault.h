// Where a line station can be told to die, so that tests can show what the ledger makes of a
// station that is killed in the middle of a unit: IDEVID_FAULT_KILL_AT=reserved (the serial is
// reserved, nothing signed), issued (the certificate is recorded, NV not written) or written (the
// certificate is in NV, not committed) makes the process SIGKILL itself at that point.
#pragma once

#include <string_view>

namespace idevid {

inline constexpr const char* kFaultKillAtVariable = "IDEVID_FAULT_KILL_AT";

// The points a station passes: "reserved", "issued", "written".
namespace station_fault {
inline constexpr std::string_view kReserved = "reserved";
inline constexpr std::string_view kIssued = "issued";
inline constexpr std::string_view kWritten = "written";
}  // namespace station_fault

// SIGKILLs this process when IDEVID_FAULT_KILL_AT names `point`; returns otherwise.
void DieHereIfAsked(std::string_view point);

}  // namespace idevid
