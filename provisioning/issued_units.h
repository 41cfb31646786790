// The units a factory directory has issued certificates to, one file per serial under
// DIR/issued/: a serial is reserved by creating its file exclusively, so that two stations (or
// two processes of one) never both issue it.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace idevid {

class IssuedUnits {
 public:
  explicit IssuedUnits(std::filesystem::path factory_dir);
  // True when `serial` has been issued (or reserved) already.
  bool Contains(const std::string& serial) const;
  // Reserves `serial` with `record` (JSON, written to its file). Returns false when it was taken
  // already; fails with kIo when the file cannot be created or written.
  Result<bool> Reserve(const std::string& serial, const nlohmann::json& record);
  // Gives a reserved serial back (after a failure to issue), so that the unit can try again.
  void Release(const std::string& serial);

 private:
  std::filesystem::path FileOf(const std::string& serial) const;
  std::filesystem::path dir_;
};

}  // namespace idevid
