// Compiled by the test ResultIsMustUse: with DROP_RESULT it must not compile (a Result is
// [[nodiscard]]); without, it must.
#include "core/result.h"

namespace {

idevid::Result<void> Fallible() { return {}; }
idevid::Result<int> FallibleValue() { return 1; }

}  // namespace

int main() {
#ifdef DROP_RESULT
  Fallible();
  FallibleValue();
  return 0;
#else
  return Fallible() && FallibleValue() ? 0 : 1;
#endif
}
