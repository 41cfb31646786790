// Executes one operational command against the node-local store.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "device/config/device_config.h"
#include "device/pkid/node_local_store.h"
#include "device/pkid/operational_command.h"

namespace idevid {

// The answer to one command: status 0 = success; text as the appliance prints it; data = the
// same facts for `--json`.
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
  // `reload` loads the store again and returns it; called for `request ... reload`.
  CommandHandler(const NodeLocalStore& store, std::function<void()> reload)
      : store_(store), reload_(std::move(reload)) {}

  // Parses and executes `line`; a malformed command answers status 2 with the known commands.
  CommandResponse Execute(std::string_view line) const;

 private:
  CommandResponse Show(const OperationalCommand& command) const;
  CommandResponse Verify(const std::string& id) const;
  CommandResponse Export(const std::string& id) const;
  const StoreEntry* Find(const std::string& id) const;

  const NodeLocalStore& store_;
  std::function<void()> reload_;
};

}  // namespace idevid
