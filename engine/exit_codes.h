// The idevid command's exit codes (see the design: 0 pass, 1 fail, 2 infrastructure, 4 usage).
#pragma once

#include <iostream>

#include "core/result.h"

namespace idevid::cli {

inline constexpr int kExitPass = 0;
inline constexpr int kExitFail = 1;
inline constexpr int kExitInfrastructure = 2;
inline constexpr int kExitUsage = 4;

// Usage and configuration errors are the user's to fix (4); everything else is infrastructure (2):
// an Error is never a failed check (a refused unit is a Verdict, core/verdict.h, and exits 1).
inline int ExitCodeFor(const Error& error) {
  return error.domain() == ErrorDomain::kUsage || error.domain() == ErrorDomain::kConfig
             ? kExitUsage
             : kExitInfrastructure;
}

// Prints "idevid: <message>" on stderr and returns the error's exit code.
inline int ReportError(const Error& error) {
  std::cerr << "idevid: " << error.message() << "\n";
  return ExitCodeFor(error);
}

}  // namespace idevid::cli
