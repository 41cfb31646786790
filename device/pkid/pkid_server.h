// The device PKI daemon: loads the node-local store at start and on restart (SIGHUP or
// `request security pki node-local reload`) and answers operational commands on a Unix socket.
// It watches its TPM: idev-id is reported not loaded while the TPM does not answer, and loaded
// again by itself once the TPM answers.
#pragma once

#include <cstddef>
#include <filesystem>
#include <stop_token>
#include <string>

#include "core/result.h"
#include "device/pkid/node_local_store.h"
#include "device/pkid/tpm_reachability.h"

namespace idevid {

struct PkidOptions {
  std::filesystem::path config;  // device configuration (re-read on restart)
  std::string tcti;              // the TPM holding idev-id
  std::filesystem::path socket;  // created 0600, or 0660 with the configured socket-group
  WallClock now;                 // injectable clock for load times; system clock when empty
  TpmBackoff tpm_retry;          // retries while the TPM does not answer; its period otherwise
  std::stop_token stop;          // a stop request ends pkid as SIGTERM does (embedding, tests)
};

// How many clients pkid answers at once, each on a thread of its own that pkid joins when it
// stops; further clients wait in the listen queue.
inline constexpr std::size_t kClientThreads = 8;

// Runs until SIGTERM, SIGINT or a stop request, then ends within about a second, even with
// clients that send nothing (each is given up), joins every thread it started and removes its
// socket. Fails only when it cannot start: an
// invalid configuration (kConfig), a socket path in use or not creatable (kIo), an unknown
// socket group (kConfig). A TPM that does not answer is not a start failure: idev-id is then
// reported as not loaded naming the TPM, and loaded when the TPM answers (retried after
// tpm_retry's pauses) or on the next restart. A restart with an invalid configuration keeps
// the running configuration and store.
Result<void> RunPkid(const PkidOptions& options);

}  // namespace idevid
