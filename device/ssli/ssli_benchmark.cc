// TPM-mode SSL-I handshakes per second with our provider, beside tpm2-openssl in its documented
// configuration (-provider tpm2 -provider default, handle:0x81020000), file mode and the raw
// TPM2_Sign rate, all in one run on one swtpm behind tpm2-abrmd; prints the ratios at the end.
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "cloud/cloud_server.h"
#include "core/file_io.h"
#include "core/idevid_profile.h"
#include "core/tpm_key_signer.h"
#include "core/tpm_nv.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/config/config_parser.h"
#include "device/ssli/ssli_client.h"
#include "fixtures/tpm_fixture.h"
#include "harness/swtpm_instance.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

void Check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// One provisioned unit, its cloud and its SSL-I clients, shared by every benchmark.
struct Bench {
  testing::TempDir dir;
  std::optional<SwtpmInstance> swtpm;
  std::optional<Factory> factory;
  std::unique_ptr<CloudServer> cloud;
  std::optional<DeviceConfig> config;
  std::unique_ptr<SsliClient> tpm_client, file_client;

  Bench() {
    auto started = SwtpmInstance::Start({.state_dir = dir.path() / "tpm", .with_abrmd = true, .manufacture = true});
    Check(started.has_value(), "swtpm");
    swtpm = std::move(*started);
    factory = *InitFactory({.dir = dir.path() / "factory"});
    {
      auto tpm = TpmContext::Open(swtpm->tcti());
      Check(tpm && ProvisionUnit(*tpm, *factory, {.serial = "CW1", .model = "SRX4300"}).has_value(),
            "provision");
    }
    WriteCredentials();
    cloud = std::move(*CloudServer::Start({"127.0.0.1", 0, dir.path() / "server.pem",
                                          dir.path() / "server.key", FactoryFiles::Chain(factory->dir)}));
    config = *LoadDeviceConfig(dir.path() / "device.conf");
    tpm_client = Client("tpm");
    file_client = Client("file");
  }
  std::unique_ptr<SsliClient> Client(const std::string& profile) {
    auto client = SsliClient::Create({&*config, profile, std::nullopt, swtpm->tcti(), "127.0.0.1", cloud->port()});
    Check(client.has_value(), client ? "" : client.error().ToString());
    return std::move(*client);
  }
  void WriteCredentials() {
    const auto& d = dir.path();
    auto server_key = *GenerateKey(KeyAlgorithm::kEccP256);
    auto server = *IssueCertificate({.subject = {{"CN", "cloud"}}, .not_after = "20991231235959Z"},
                                    *server_key, factory->issuing.get(), *factory->issuing_key);
    Check(WriteFileAtomic(d / "server.pem", *CertificatePem(*server) + *CertificatePem(*factory->issuing))
              .has_value() && WritePrivateKeyPem(d / "server.key", *server_key).has_value(),
          "server certificate");
    auto file_key = *GenerateKey(KeyAlgorithm::kEccP256);
    auto spec = *IdevidCertificateSpec({"FS1", "SRX4300", "Example Networks", Bytes(32, 1)});
    auto file = *IssueCertificate(spec, *file_key, factory->issuing.get(), *factory->issuing_key);
    Check(WriteFileAtomic(d / "fs.pem", *CertificatePem(*file)).has_value() &&
              WritePrivateKeyPem(d / "fs.key", *file_key).has_value(),
          "file certificate");
    Check(WriteFileAtomic(d / "device.conf", fmt::format(
        "set security pki ca-profile ca certificate {0}/factory/root-ca.pem\n"
        "set security pki node-local local-certificate fs certificate {0}/fs.pem\n"
        "set security pki node-local local-certificate fs private-key {0}/fs.key\n"
        "set services ssl initiation profile tpm client-certificate idev-id\n"
        "set services ssl initiation profile tpm crypto-hardware-offload tpm\n"
        "set services ssl initiation profile tpm trusted-ca ca\n"
        "set services ssl initiation profile tpm protocol-version tls13\n"
        "set services ssl initiation profile file client-certificate fs\n"
        "set services ssl initiation profile file trusted-ca ca\n"
        "set services ssl initiation profile file protocol-version tls13\n", d.string())).has_value(),
          "config");
  }
  static Bench& Get() {
    static Bench bench;
    return bench;
  }
};

void Accepted(const Result<SsliResult>& r, benchmark::State& state) {
  if (!r || !r->accepted()) state.SkipWithError(r ? "not accepted" : r.error().ToString().c_str());
}

void BM_TpmModeHandshake_Ours(benchmark::State& state) {
  Bench& b = Bench::Get();
  for (auto _ : state) Accepted(b.tpm_client->Connect(), state);
  state.counters["handshakes_per_s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}

void BM_FileModeHandshake(benchmark::State& state) {
  Bench& b = Bench::Get();
  for (auto _ : state) Accepted(b.file_client->Connect(), state);
  state.counters["handshakes_per_s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}

// tpm2-openssl: its provider and its "handle:" store loader, the same TLS 1.3 session.
void BM_TpmModeHandshake_Tpm2Openssl(benchmark::State& state) {
  Bench& b = Bench::Get();
  ::setenv("TPM2OPENSSL_TCTI", b.swtpm->tcti().c_str(), 1);
  ossl::Owner<OSSL_LIB_CTX, OSSL_LIB_CTX_free> libctx(OSSL_LIB_CTX_new());
  struct Unload {
    void operator()(OSSL_PROVIDER* p) const { OSSL_PROVIDER_unload(p); }
  };
  // Declared after libctx: unloaded before it is freed.
  std::unique_ptr<OSSL_PROVIDER, Unload> tpm2(OSSL_PROVIDER_load(libctx.get(), "tpm2"));
  std::unique_ptr<OSSL_PROVIDER, Unload> fallback(OSSL_PROVIDER_load(libctx.get(), "default"));
  Check(tpm2 && fallback, "tpm2 provider");
  struct StoreClose {
    void operator()(OSSL_STORE_CTX* s) const { OSSL_STORE_close(s); }
  };
  std::unique_ptr<OSSL_STORE_CTX, StoreClose> store(
      OSSL_STORE_open_ex("handle:0x81020000", libctx.get(), "?provider=tpm2", nullptr, nullptr, nullptr, nullptr, nullptr));
  ossl::PKey key;
  while (store && !key && !OSSL_STORE_eof(store.get())) {
    ossl::Owner<OSSL_STORE_INFO, OSSL_STORE_INFO_free> info(OSSL_STORE_load(store.get()));
    if (info && OSSL_STORE_INFO_get_type(info.get()) == OSSL_STORE_INFO_PKEY) key.reset(OSSL_STORE_INFO_get1_PKEY(info.get()));
  }
  Check(key != nullptr, "tpm2-openssl cannot load handle:0x81020000");
  auto tpm = TpmContext::Open(b.swtpm->tcti());
  auto cert = ParseCertificate(*NvRead(*tpm, 0x01C90000));
  ossl::Owner<SSL_CTX, SSL_CTX_free> ctx(SSL_CTX_new_ex(libctx.get(), nullptr, TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  Check(SSL_CTX_use_certificate(ctx.get(), cert->get()) == 1 && SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1,
        "tpm2-openssl credentials");
  for (auto _ : state) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{AF_INET, htons(b.cloud->port()), {htonl(INADDR_LOOPBACK)}, {}};
    ossl::Owner<SSL, SSL_free> ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd);
    std::string request = "GET /v1/identity HTTP/1.1\r\nHost: cloud\r\n\r\n";
    char reply[512];
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && SSL_connect(ssl.get()) == 1 &&
              SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0 &&
              SSL_read(ssl.get(), reply, sizeof reply) > 0 && std::string(reply, 12) == "HTTP/1.1 200";
    ::close(fd);
    if (!ok) state.SkipWithError("tpm2-openssl handshake failed");
  }
  state.counters["handshakes_per_s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}

void BM_RawTpm2Sign(benchmark::State& state) {
  Bench& b = Bench::Get();
  auto signer = TpmKeySigner::Open(b.swtpm->tcti(), 0x81020000);
  Check(signer.has_value(), "signer");
  Bytes digest(32, 0x42);
  for (auto _ : state) {
    if (!(*signer)->Sign(TpmSignScheme::kEcdsa, "SHA256", digest)) state.SkipWithError("TPM2_Sign failed");
  }
  state.counters["signatures_per_s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_RawTpm2Sign)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TpmModeHandshake_Ours)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FileModeHandshake)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TpmModeHandshake_Tpm2Openssl)->Unit(benchmark::kMillisecond)->UseRealTime();

// Keeps each benchmark's time per iteration so that the ratios come from this run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) seconds_[run.run_name.function_name] = run.GetAdjustedRealTime();
  }
  void PrintRatios() const {
    double ours = seconds_.at("BM_TpmModeHandshake_Ours");
    std::cout << fmt::format("ratio_vs_tpm2_openssl  {:.1f}  (our TPM-mode handshakes/s over tpm2-openssl's)\n",
                             seconds_.at("BM_TpmModeHandshake_Tpm2Openssl") / ours)
              << fmt::format("ratio_vs_file_mode     {:.2f}  (our TPM-mode handshakes/s over file mode's)\n",
                             seconds_.at("BM_FileModeHandshake") / ours);
  }

 private:
  std::map<std::string, double> seconds_;
};

}  // namespace
}  // namespace idevid

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  idevid::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
