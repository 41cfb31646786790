// Boot load of idev-id: pkid's load at start (in the daemon), pkid as a process from exec until it
// answers with idev-id loaded, and the tpm2-tools processes it replaces (tpm2_nvread of the
// certificate, tpm2_readpublic of the key), all on the target's TCTI.
#include <fmt/format.h>

#include <chrono>

#include "bench/bench_registry.h"
#include "core/file_io.h"
#include "device/pkid/node_local_store.h"
#include "device/pkid/pkid_client.h"
#include "engine/process.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

Result<void> PkidLoad(const std::string& tcti) {
  StoreEntry entry = LoadIdevidEntry({}, tcti, [] { return std::chrono::system_clock::now(); });
  if (entry.status.loaded) return {};
  if (entry.status.tpm_unreachable) {
    return PeerError(PeerCode::kUnreachable, "pkid did not load idev-id: " + entry.status.error);
  }
  return UsageError(UsageCode::kWrongState, "pkid did not load idev-id: " + entry.status.error);
}

// Starts pkid, waits until it answers that idev-id is loaded, and stops it (untimed).
Result<void> PkidProcess(benchmark::State& state, BenchContext& context,
                         const std::filesystem::path& config) {
  auto socket = context.options().work_dir / "boot-pkid.sock";
  IDEVID_ASSIGN_OR_RETURN(
      ChildProcess pkid,
      ChildProcess::Spawn({.argv = {IdevidExecutable(), "pkid", "--tcti", context.unit().tcti(), "--config",
                                    config.string(), "--socket", socket.string()},
                           .log = context.options().work_dir / "boot-pkid.log",
                           .env = {{"TSS2_LOG", "all+NONE"}}}));
  bool loaded = PollUntil(
      [&] {
        auto r =
            SendPkidCommand(socket, "show security pki node-local local-certificate certificate-id idev-id");
        return r && r->data.is_array() && !r->data.empty() && r->data[0]["loaded"] == true;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(1));
  // How it ended when it ended by itself, read before Stop ends it.
  std::uint64_t code = pkid.Ended() ? pkid.status_code().value_or(kProcessDeadline) : kProcessDeadline;
  state.PauseTiming();
  pkid.Stop();
  state.ResumeTiming();
  if (!loaded) {
    return Fail(ErrorDomain::kProcess, code,
                "pkid did not answer with idev-id loaded; its log ends with:\n" +
                    LogTail(context.options().work_dir / "boot-pkid.log"));
  }
  return {};
}

Result<void> Tpm2Tools(BenchContext& context) {
  std::map<std::string, std::string> env = {{"TPM2TOOLS_TCTI", context.unit().tcti()},
                                            {"TSS2_LOG", "all+NONE"}};
  auto der = (context.options().work_dir / "boot-idevid.der").string();
  auto pem = (context.options().work_dir / "boot-idevid.pub.pem").string();
  for (const auto& argv :
       {std::vector<std::string>{"tpm2_nvread", fmt::format("{:#010x}", kDefaultIdevidNvIndex), "-o", der},
        std::vector<std::string>{"tpm2_readpublic", "-c", fmt::format("{:#010x}", kDefaultIdevidKeyHandle),
                                 "-f", "pem", "-o", pem}}) {
    IDEVID_ASSIGN_OR_RETURN(CommandOutput run, RunCommand(argv, env));
    if (run.exit_status != 0) {
      return Fail(ErrorDomain::kProcess, run.status_code, fmt::format("{} failed: {}", argv[0], run.err));
    }
  }
  return {};
}

}  // namespace

void RegisterBootBenchmarks(BenchContext& context) {
  AddBenchmark(context, "boot/pkid_load", "loads", [&context](benchmark::State& state) {
    for (auto _ : state) {
      if (!Continue(state, PkidLoad(context.unit().tcti()))) break;
    }
    CountRate(state);
  });
  AddBenchmark(context, "boot/pkid_process", "loads", [&context](benchmark::State& state) {
    // Only idev-id, as the tpm2-tools compared with read only idev-id.
    auto config = context.options().work_dir / "boot-device.conf";
    Usable(state, WriteFileAtomic(config, fmt::format("set security pki node-local idev-id nv-index {:#010x} "
                                                      "key-handle {:#010x}\n",
                                                      kDefaultIdevidNvIndex, kDefaultIdevidKeyHandle)));
    for (auto _ : state) {
      if (!Continue(state, PkidProcess(state, context, config))) break;
    }
    CountRate(state);
  });
  AddBenchmark(context, "boot/tpm2_tools", "loads", [&context](benchmark::State& state) {
    for (auto _ : state) {
      if (!Continue(state, Tpm2Tools(context))) break;
    }
    CountRate(state);
  });
}

}  // namespace idevid
