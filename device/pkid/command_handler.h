// Executes one operational command against the node-local store.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "device/config/device_config.h"
#include "device/pkid/node_local_store.h"
#include "device/pkid/operational_command.h"

namespace idevid {

// The statuses of an answer: what the command's client makes of it.
inline constexpr int kStatusOk = 0;
inline constexpr int kStatusFailed = 1;          // the command's verdict: refused or failed
inline constexpr int kStatusMalformed = 2;       // not a command pkid knows
inline constexpr int kStatusConfigRejected = 3;  // reload: the new configuration is refused

// The answer to one command: status (above); text as the appliance prints it; data = the same
// facts for `--json`.
struct CommandResponse {
  int status = 0;
  std::string text;
  nlohmann::json data = nlohmann::json::object();
};

// 802.1AR devices carry no factory CA: a local verify of idev-id is refused, word for word.
inline constexpr const char* kIdevidVerifyRefusal =
    "local certificate verification can't performed for IDev-ID certificate as the CA cert for "
    "the same is not available";

class CommandHandler {
 public:
  // `reload` reads the configuration again and loads the store; called for `request ... reload`.
  // It fails (kConfig) when the new configuration is refused and the running one is kept.
  CommandHandler(const NodeLocalStore& store, std::function<Result<void>()> reload)
      : store_(store), reload_(std::move(reload)) {}

  // Parses and executes `line`; a malformed command answers kStatusMalformed with the known
  // commands; a reload whose configuration is refused answers kStatusConfigRejected.
  CommandResponse Execute(std::string_view line) const;

 private:
  CommandResponse Show(const OperationalCommand& command) const;
  CommandResponse Verify(const std::string& id) const;
  CommandResponse Export(const std::string& id) const;
  const StoreEntry* Find(const std::string& id) const;
  CommandResponse Reload() const;

  const NodeLocalStore& store_;
  std::function<Result<void>()> reload_;
};

}  // namespace idevid
