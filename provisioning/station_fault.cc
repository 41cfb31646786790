#include "provisioning/station_fault.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

namespace idevid {

void DieHereIfAsked(std::string_view point) {
  const char* wanted = std::getenv(kFaultKillAtVariable);
  if (wanted == nullptr || point != wanted) return;
  ::kill(::getpid(), SIGKILL);
  ::pause();  // SIGKILL is delivered before this returns
}

}  // namespace idevid
