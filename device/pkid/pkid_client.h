// The client side of pkid's socket: `idevid cli` and SSL-I clients.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "core/result.h"
#include "device/pkid/command_handler.h"

namespace idevid {

// Sends one operational command and returns pkid's answer. Fails with kIo when pkid cannot be
// reached or does not answer within `timeout`, kConfig when the answer is not pkid's format.
Result<CommandResponse> SendPkidCommand(const std::filesystem::path& socket, const std::string& command,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace idevid
