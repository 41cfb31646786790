#include "device/pkid/pkid_client.h"

#include <fmt/format.h>

#include "core/display_text.h"
#include "device/pkid/unix_socket.h"

namespace idevid {

Result<CommandResponse> SendPkidCommand(const std::filesystem::path& socket, const std::string& command,
                                        std::chrono::milliseconds timeout) {
  IDEVID_ASSIGN_OR_RETURN(std::string answer, Exchange(socket, command + "\n", timeout));
  try {
    auto j = nlohmann::json::parse(answer);
    return CommandResponse{j.at("status").get<int>(), j.at("text").get<std::string>(), j.at("data")};
  } catch (const nlohmann::json::exception& e) {
    return PeerError(PeerCode::kMalformed, fmt::format("pkid at {} answered something else than its JSON: {}",
                                                       socket.string(), DisplayText(e.what())));
  }
}

}  // namespace idevid
