// Boot load of idev-id on swtpm: pkid's loader, and pkid started as a process until it answers
// with idev-id loaded, beside the same work done with tpm2_nvread + tpm2_readpublic processes.
#include <benchmark/benchmark.h>

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "core/file_io.h"
#include "device/pkid/node_local_store.h"
#include "device/pkid/pkid_client.h"
#include "fixtures/tpm_fixture.h"
#include "harness/process.h"
#include "harness/swtpm_instance.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

// One manufactured, provisioned swtpm shared by the benchmarks.
struct Unit {
  testing::TempDir dir;
  std::optional<SwtpmInstance> swtpm;

  Unit() {
    auto started = SwtpmInstance::Start({.state_dir = dir.path() / "tpm", .manufacture = true});
    if (!started) throw std::runtime_error(started.error().ToString());
    swtpm = std::move(*started);
    auto factory = InitFactory({.dir = dir.path() / "factory"});
    auto tpm = TpmContext::Open(swtpm->tcti());
    if (!factory || !tpm) throw std::runtime_error("cannot prepare the unit");
    if (!ProvisionUnit(*tpm, *factory, {.serial = "CW1", .model = "SRX4300"})) {
      throw std::runtime_error("cannot provision the unit");
    }
    auto config = "set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000\n";
    if (!WriteFileAtomic(dir.path() / "device.conf", std::string_view(config))) {
      throw std::runtime_error("cannot write the configuration");
    }
  }
  static Unit& Get() {
    static Unit unit;
    return unit;
  }
};

WallClock Now() {
  return [] { return std::chrono::system_clock::now(); };
}

void BM_PkidLoader(benchmark::State& state) {
  Unit& unit = Unit::Get();
  for (auto _ : state) {
    StoreEntry entry = LoadIdevidEntry({}, unit.swtpm->tcti(), Now());
    if (!entry.status.loaded) state.SkipWithError(entry.status.error.c_str());
  }
}

void BM_PkidProcessStartToLoaded(benchmark::State& state) {
  Unit& unit = Unit::Get();
  auto socket = unit.dir.path() / "pkid.sock";
  for (auto _ : state) {
    auto pkid = ChildProcess::Spawn(
        {.argv = {IDEVID_BINARY, "pkid", "--tcti", unit.swtpm->tcti(), "--config",
                  (unit.dir.path() / "device.conf").string(), "--socket", socket.string()},
         .log = unit.dir.path() / "pkid.log"});
    bool loaded = pkid && PollUntil(
        [&] {
          auto r = SendPkidCommand(socket, "show security pki node-local local-certificate "
                                           "certificate-id idev-id");
          return r && r->data.is_array() && !r->data.empty() && r->data[0]["loaded"] == true;
        },
        std::chrono::seconds(10), std::chrono::milliseconds(1));
    state.PauseTiming();
    if (pkid) pkid->Stop();
    state.ResumeTiming();
    if (!loaded) state.SkipWithError("pkid did not load idev-id");
  }
}

void BM_Tpm2ToolsNvreadReadpublic(benchmark::State& state) {
  Unit& unit = Unit::Get();
  auto env = unit.swtpm->ClientEnvironment();
  env["TSS2_LOG"] = "all+NONE";
  auto der = (unit.dir.path() / "idevid.der").string();
  auto pem = (unit.dir.path() / "idevid.pub.pem").string();
  for (auto _ : state) {
    auto nv = RunCommand({"tpm2_nvread", "0x01C90000", "-o", der}, env);
    auto pub = RunCommand({"tpm2_readpublic", "-c", "0x81020000", "-f", "pem", "-o", pem}, env);
    if (!nv || nv->exit_status != 0 || !pub || pub->exit_status != 0) {
      state.SkipWithError("tpm2-tools failed");
    }
  }
}

BENCHMARK(BM_PkidLoader)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PkidProcessStartToLoaded)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Tpm2ToolsNvreadReadpublic)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace idevid

BENCHMARK_MAIN();
