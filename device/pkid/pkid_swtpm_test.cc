// pkid as the appliance runs it: a real `idevid pkid` process against a provisioned swtpm,
// asked through its socket.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "core/unique_fd.h"
#include "core/x509.h"
#include "core/x509_build.h"
#include "device/pkid/command_handler.h"
#include "device/pkid/pkid_client.h"
#include "engine/process.h"
#include "engine/swtpm_instance.h"
#include "fixtures/tpm_fixture.h"
#include "provisioning/factory.h"
#include "provisioning/provisioner.h"

namespace idevid {
namespace {

const std::string kShowIdevid =
    "show security pki node-local local-certificate certificate-id idev-id detail";

// A file-system certificate, its key, its CA and an unrelated CA, written into `dir`.
void WriteFileCertificates(const std::filesystem::path& dir) {
  auto make_ca = [&](const std::string& name) {
    auto key = GenerateKey(KeyAlgorithm::kEccP256);
    auto cert = IssueCertificate(
        {.subject = {{"CN", name}},
         .not_after = "20991231235959Z",
         .extensions = {{"basicConstraints", "critical,CA:TRUE"}, {"keyUsage", "critical,keyCertSign"}}},
        **key, nullptr, **key);
    EXPECT_TRUE(WriteFileAtomic(dir / (name + ".pem"), *CertificatePem(**cert)));
    return std::pair(std::move(*key), std::move(*cert));
  };
  auto [ca_key, ca] = make_ca("fs-ca");
  make_ca("other-ca");
  auto key = GenerateKey(KeyAlgorithm::kEccP256);
  auto leaf = IssueCertificate({.subject = {{"CN", "fs-cert"}}, .not_after = "20991231235959Z"}, **key,
                               ca.get(), *ca_key);
  ASSERT_TRUE(leaf);
  ASSERT_TRUE(WriteFileAtomic(dir / "fs-cert.pem", *CertificatePem(**leaf)));
  ASSERT_TRUE(WritePrivateKeyPem(dir / "fs-cert.key", **key));
}

std::string Config(const std::filesystem::path& d) {
  return fmt::format(
      "set security pki ca-profile fs-ca certificate {0}/fs-ca.pem\n"
      "set security pki ca-profile other-ca certificate {0}/other-ca.pem\n"
      "set security pki node-local local-certificate fs-cert certificate {0}/fs-cert.pem\n"
      "set security pki node-local local-certificate fs-cert private-key {0}/fs-cert.key\n"
      "set security pki node-local local-certificate fs-cert ca-profile fs-ca\n"
      "set security pki node-local local-certificate wrong-ca certificate {0}/fs-cert.pem\n"
      "set security pki node-local local-certificate wrong-ca private-key {0}/fs-cert.key\n"
      "set security pki node-local local-certificate wrong-ca ca-profile other-ca\n"
      "set security pki node-local idev-id nv-index 0x01C90000 key-handle 0x81020000\n",
      d.string());
}

class PkidTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartSwtpm();
    auto factory = InitFactory({.dir = dir() / "factory"});
    ASSERT_TRUE(factory);
    factory_ = std::move(*factory);
    WriteFileCertificates(dir());
    ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", Config(dir())));
  }

  // The first start picks the ports (and picks again when another process takes them before
  // swtpm binds); a restart takes the same ones, which pkid's TCTI names.
  void StartSwtpm() {
    auto swtpm = SwtpmInstance::Start({.state_dir = dir() / "tpm", .manufacture = true, .port = port_});
    ASSERT_TRUE(swtpm) << swtpm.error().ToString();
    swtpm_ = std::move(*swtpm);
    port_ = swtpm_->port();
  }
  void Provision(const std::string& serial, bool force = false) {
    auto tpm = TpmContext::Open(swtpm_->tcti());
    ASSERT_TRUE(tpm);
    auto unit = ProvisionUnit(*tpm, *factory_, {.serial = serial, .model = "SRX4300", .force = force});
    ASSERT_TRUE(unit) << unit.error().ToString();
  }
  // Starts pkid with `extra` options and waits until it answers.
  void StartPkid(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {IDEVID_BINARY, "pkid",     "--tcti",
                                     Tcti(),        "--config", (dir() / "device.conf").string(),
                                     "--socket",    Socket()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child =
        ChildProcess::Spawn({.argv = argv, .log = dir() / "pkid.log", .env = {{"TSS2_LOG", "all+NONE"}}});
    ASSERT_TRUE(child);
    pkid_ = std::move(*child);
    ASSERT_TRUE(PollUntil(
        [&] {
          return SendPkidCommand(Socket(),
                                 "request security pki node-local "
                                 "local-certificate export "
                                 "certificate-id fs-cert")
              .has_value();
        },
        std::chrono::seconds(10)))
        << LogTail(dir() / "pkid.log");
  }
  CommandResponse Ask(const std::string& command) {
    auto r = SendPkidCommand(Socket(), command);
    EXPECT_TRUE(r) << r.error().ToString();
    return r.value_or(CommandResponse{-1, "", {}});
  }
  // Sends SIGHUP and waits until idev-id's load status says `expected`.
  void RestartUntil(const std::string& expected) {
    ::kill(pkid_.pid(), SIGHUP);
    EXPECT_TRUE(PollUntil([&] { return Ask(kShowIdevid).text.find(expected) != std::string::npos; },
                          std::chrono::seconds(10)))
        << Ask(kShowIdevid).text << LogTail(dir() / "pkid.log");
  }
  std::string Socket() const { return (dir() / "pkid.sock").string(); }
  std::string Tcti() const { return fmt::format("swtpm:host=127.0.0.1,port={}", port_); }
  // Runs `idevid ARGS...` to its end.
  CommandOutput Idevid(std::vector<std::string> args) {
    args.insert(args.begin(), IDEVID_BINARY);
    auto out = RunCommand(args, {{"TSS2_LOG", "all+NONE"}}, std::chrono::seconds(30));
    EXPECT_TRUE(out);
    return out.value_or(CommandOutput{});
  }
  const std::filesystem::path& dir() const { return temp_.path(); }

  testing::TempDir temp_;
  std::uint16_t port_ = 0;  // 0 until swtpm first starts
  std::optional<Factory> factory_;
  std::optional<SwtpmInstance> swtpm_;
  ChildProcess pkid_;  // declared last: stopped first
};

TEST_F(PkidTest, ShowListsIdevidWithTheUnitsSerialModelAndTpmKey) {
  Provision("CW9876543210");
  StartPkid();
  CommandResponse show = Ask(kShowIdevid);
  EXPECT_EQ(show.status, 0);
  for (const char* line :
       {"Certificate identifier: idev-id", "Common name: SRX4300, Serial number: CW9876543210",
        "Not after: 12-31-9999 23:59 UTC", "Public key algorithm: ecdsaEncryption (256 bits)",
        "Key location: tpm 0x81020000", "from NV 0x01C90000"}) {
    EXPECT_NE(show.text.find(line), std::string::npos) << line << "\n" << show.text;
  }
  EXPECT_EQ(show.data[0]["subject"]["serial_number"], "CW9876543210");
  CommandResponse all = Ask("show security pki node-local local-certificate");
  EXPECT_EQ(all.data.size(), 3u);
  EXPECT_EQ(std::filesystem::status(Socket()).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(PkidTest, VerifyOfIdevidIsRefusedWordForWordAndFileCertificatesAreVerifiedForReal) {
  Provision("CW1");
  StartPkid();
  CommandResponse refused =
      Ask("request security pki node-local local-certificate verify certificate-id idev-id");
  EXPECT_EQ(refused.status, 1);
  EXPECT_EQ(refused.text,
            "local certificate verification can't performed for IDev-ID certificate as the CA "
            "cert for the same is not available\n");
  CommandResponse good =
      Ask("request security pki node-local local-certificate verify certificate-id fs-cert");
  EXPECT_EQ(good.status, 0) << good.text;
  EXPECT_EQ(good.text, "Local certificate fs-cert verification success\n");
  CommandResponse bad =
      Ask("request security pki node-local local-certificate verify certificate-id wrong-ca");
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(bad.text,
            "Local certificate wrong-ca verification failed: unable to get local "
            "issuer certificate\n");
}

TEST_F(PkidTest, SighupAfterReprovisioningShowsTheNewCertificate) {
  Provision("CW1");
  StartPkid();
  EXPECT_NE(Ask(kShowIdevid).text.find("Serial number: CW1\n"), std::string::npos);
  Provision("CW2", /*force=*/true);
  RestartUntil("Serial number: CW2\n");
}

TEST_F(PkidTest, TheReloadCommandLoadsTheNewCertificateLikeSighup) {
  Provision("CW1");
  StartPkid();
  Provision("CW3", /*force=*/true);
  CommandResponse reload = Ask("request security pki node-local reload");
  EXPECT_EQ(reload.status, 0);
  EXPECT_EQ(reload.text, "node-local certificates reloaded\n");
  EXPECT_NE(Ask(kShowIdevid).text.find("Serial number: CW3\n"), std::string::npos);
}

TEST_F(PkidTest, PkidStartedBeforeTheTpmReportsIdevidNotLoadedAndLoadsItAfterRestart) {
  Provision("CW1");
  swtpm_->Stop();
  StartPkid();
  CommandResponse down = Ask(kShowIdevid);
  EXPECT_EQ(down.status, 0);
  EXPECT_NE(down.text.find("Load status: not loaded"), std::string::npos) << down.text;
  EXPECT_NE(down.text.find(fmt::format("the TPM at {} does not answer: ", Tcti())), std::string::npos)
      << down.text;
  EXPECT_NE(down.text.find("; retrying every "), std::string::npos) << down.text;
  EXPECT_EQ(down.data[0]["loaded"], false);
  EXPECT_EQ(Ask("request security pki node-local local-certificate verify certificate-id "
                "fs-cert")
                .status,
            0)
      << "a missing TPM must not stop the other certificates";
  StartSwtpm();
  RestartUntil("Load status: loaded at");
}

TEST_F(PkidTest, TheCliPrintsAnswersWithTheDesignsExitCodes) {
  Provision("CW1");
  StartPkid();
  auto run = [&](std::vector<std::string> words) {
    words.insert(words.begin(), {IDEVID_BINARY, "cli", "--socket", Socket()});
    auto out = RunCommand(words);
    EXPECT_TRUE(out);
    return out.value_or(CommandOutput{});
  };
  auto show = run({"show", "security", "pki", "node-local", "local-certificate", "brief"});
  EXPECT_EQ(show.exit_status, 0);
  EXPECT_NE(show.out.find("Issued to: Organization: Example Networks, Common name: SRX4300"),
            std::string::npos)
      << show.out;
  auto refused = run({"request", "security", "pki", "node-local", "local-certificate", "verify",
                      "certificate-id", "idev-id"});
  EXPECT_EQ(refused.exit_status, 1);
  EXPECT_NE(refused.err.find(kIdevidVerifyRefusal), std::string::npos);
  auto unknown = run({"show", "version"});
  EXPECT_EQ(unknown.exit_status, 4);
  EXPECT_NE(unknown.err.find("known commands:\n  show security pki node-local local-certificate"),
            std::string::npos)
      << unknown.err;
  auto json = run(
      {"--json", "show", "security", "pki", "node-local", "local-certificate", "certificate-id", "idev-id"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["data"][0]["key_location"], "tpm 0x81020000");
}

TEST_F(PkidTest, ExportGivesSslClientsTheCertificateAndItsKeyReference) {
  Provision("CW1");
  StartPkid();
  CommandResponse idevid =
      Ask("request security pki node-local local-certificate export certificate-id idev-id");
  ASSERT_EQ(idevid.status, 0) << idevid.text;
  EXPECT_EQ(idevid.data["key"]["location"], "tpm");
  EXPECT_EQ(idevid.data["key"]["handle"], 0x81020000u);
  auto pem = idevid.data["certificate_pem"].get<std::string>();
  auto cert = ParseCertificate(std::span(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size()));
  ASSERT_TRUE(cert);
  EXPECT_EQ(*SubjectAttribute(**cert, "2.5.4.5"), std::vector<std::string>{"CW1"});
  CommandResponse file =
      Ask("request security pki node-local local-certificate export certificate-id fs-cert");
  ASSERT_EQ(file.status, 0);
  EXPECT_EQ(file.data["key"]["path"], (dir() / "fs-cert.key").string());
  EXPECT_EQ(file.text.find("PRIVATE KEY"), std::string::npos);
  CommandResponse unknown =
      Ask("request security pki node-local local-certificate export certificate-id nope");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_EQ(unknown.text, "certificate-id nope is not configured\n");
}

TEST_F(PkidTest, ASilentClientDoesNotHoldUpOthers) {
  Provision("CW1");
  StartPkid();
  auto silent = OpenSocket(AF_UNIX, SOCK_STREAM);
  ASSERT_TRUE(silent);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, Socket().c_str());
  ASSERT_EQ(::connect(silent->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto start = std::chrono::steady_clock::now();
  CommandResponse show = Ask(kShowIdevid);
  auto waited = std::chrono::steady_clock::now() - start;
  silent->reset();
  EXPECT_EQ(show.status, 0);
  EXPECT_LT(waited, std::chrono::seconds(2)) << "pkid waited for the silent client first";
}

// Four clients ask pkid without pause while it is restarted twice (SIGTERM, start) and reloaded
// twice (SIGHUP). Every question gets pkid's answer or a kIo error within its timeout (none
// hangs, none gets a garbled answer), and once pkid is back every client is answered again.
TEST_F(PkidTest, ClientsUnderLoadSeeAnswersOrCleanErrorsWhilePkidRestarts) {
  Provision("CW1");
  StartPkid();
  std::atomic<bool> done{false};
  struct Tally {
    std::atomic<int> answered{0}, refused{0}, wrong{0};
    std::chrono::steady_clock::duration slowest{};  // written by its client only, read after join
  };
  std::vector<Tally> tallies(4);
  std::vector<std::thread> clients;
  for (auto& tally : tallies) {
    clients.emplace_back([&, t = &tally] {
      while (!done) {
        auto start = std::chrono::steady_clock::now();
        auto r = SendPkidCommand(Socket(), kShowIdevid, std::chrono::seconds(5));
        t->slowest = std::max(t->slowest, std::chrono::steady_clock::now() - start);
        if (r && r->text.find("Serial number: CW1") != std::string::npos)
          ++t->answered;
        else if (!r && r.error().domain() == ErrorDomain::kIo)
          ++t->refused;
        else
          ++t->wrong;
      }
    });
  }
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    pkid_.Stop();
    StartPkid();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(pkid_.pid(), SIGHUP);
  }
  // After the last restart every client must be answered again (within a deadline).
  std::vector<int> answered_before;
  for (const auto& t : tallies) answered_before.push_back(t.answered);
  bool all_answered = PollUntil(
      [&] {
        for (std::size_t i = 0; i < tallies.size(); ++i) {
          if (tallies[i].answered <= answered_before[i]) return false;
        }
        return true;
      },
      std::chrono::seconds(15));
  done = true;
  for (auto& c : clients) c.join();
  EXPECT_TRUE(all_answered) << "a client is not answered after the restarts";
  for (std::size_t i = 0; i < tallies.size(); ++i) {
    EXPECT_EQ(tallies[i].wrong, 0) << "client " << i << " got an answer that was not pkid's";
    EXPECT_LT(tallies[i].slowest, std::chrono::seconds(6)) << "client " << i << " waited past its timeout";
  }
}

TEST_F(PkidTest, SocketGroupOpensTheSocketToThatGroupOnly) {
  Provision("CW1");
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf",
                              Config(dir()) + "set security pki node-local socket-group root\n"));
  StartPkid();
  using std::filesystem::perms;
  EXPECT_EQ(std::filesystem::status(Socket()).permissions() & perms::all,
            perms::owner_read | perms::owner_write | perms::group_read | perms::group_write);
}

TEST_F(PkidTest, UnknownSocketGroupStopsPkidAtStartWithAUsageError) {
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf",
                              Config(dir()) + "set security pki node-local socket-group no-such-group\n"));
  auto run = RunCommand({IDEVID_BINARY, "pkid", "--tcti", swtpm_->tcti(), "--config",
                         (dir() / "device.conf").string(), "--socket", Socket()},
                        {{"TSS2_LOG", "all+NONE"}}, std::chrono::seconds(30));
  ASSERT_TRUE(run);
  EXPECT_EQ(run->exit_status, 4);
  EXPECT_NE(run->err.find("socket-group 'no-such-group' is not a group"), std::string::npos) << run->err;
  EXPECT_FALSE(std::filesystem::exists(Socket()));
}

TEST_F(PkidTest, ABadConfigurationStopsPkidAtStartNamingTheLine) {
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", std::string_view("set security pki bogus\n")));
  auto run = RunCommand({IDEVID_BINARY, "pkid", "--tcti", swtpm_->tcti(), "--config",
                         (dir() / "device.conf").string(), "--socket", Socket()});
  ASSERT_TRUE(run);
  EXPECT_EQ(run->exit_status, 4);
  EXPECT_NE(run->err.find("device.conf:1:18: expected 'ca-profile' or 'node-local', got 'bogus'"),
            std::string::npos)
      << run->err;
}

}  // namespace
}  // namespace idevid

namespace idevid {
namespace {

const std::string kReload = "request security pki node-local reload";

TEST_F(PkidTest, AReloadWithABadConfigurationIsRefusedAndTheRunningOneStays) {
  Provision("CW1");
  StartPkid();
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf",
                              Config(dir()) + "set security pki node-local idev-id nv-index 0x01C90001\n"));
  CommandResponse refused = Ask(kReload);
  EXPECT_EQ(refused.status, kStatusConfigRejected);
  EXPECT_EQ(refused.text,
            fmt::format("configuration rejected: {}/device.conf:10:1: nv-index for idev-id already "
                        "set at line 9; the previous configuration is still in use\n",
                        dir().string()));
  EXPECT_EQ(refused.data["reloaded"], false);
  EXPECT_NE(Ask(kShowIdevid).text.find("Serial number: CW1\n"), std::string::npos);
  // The command line says so too, with the exit code of a configuration error.
  auto cli = Idevid({"cli", "--socket", Socket(), "request", "security", "pki", "node-local", "reload"});
  EXPECT_EQ(cli.exit_status, 4);
  EXPECT_NE(cli.err.find("configuration rejected: "), std::string::npos) << cli.err;
  EXPECT_NE(cli.err.find("; the previous configuration is still in use"), std::string::npos) << cli.err;
  // Fixed, it loads.
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", Config(dir())));
  EXPECT_EQ(
      Idevid({"cli", "--socket", Socket(), "request", "security", "pki", "node-local", "reload"}).exit_status,
      0);
}

TEST_F(PkidTest, ACaProfileWithAMissingFileStopsAStartAndIsRefusedByAReload) {
  Provision("CW1");
  std::string missing = (dir() / "gone-ca.pem").string();
  std::string bad = Config(dir()) + "set security pki ca-profile gone certificate " + missing + "\n";
  std::string expected = fmt::format(
      "{}/device.conf:10:1: ca-profile 'gone' certificate '{}' cannot "
      "be read: No such file or directory",
      dir().string(), missing);
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", bad));
  auto start =
      Idevid({"pkid", "--tcti", Tcti(), "--config", (dir() / "device.conf").string(), "--socket", Socket()});
  EXPECT_EQ(start.exit_status, 4);
  EXPECT_NE(start.err.find(expected), std::string::npos) << start.err;
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", Config(dir())));
  StartPkid();
  ASSERT_TRUE(WriteFileAtomic(dir() / "device.conf", bad));
  CommandResponse refused = Ask(kReload);
  EXPECT_EQ(refused.status, kStatusConfigRejected);
  EXPECT_EQ(refused.text,
            "configuration rejected: " + expected + "; the previous configuration is still in use\n");
}

// A configuration file that is not there is the user's to fix: a usage error (4) naming it,
// for pkid as for ssli connect.
TEST_F(PkidTest, AMissingConfigurationFileIsAUsageErrorNamingIt) {
  std::string missing = (dir() / "no-such.conf").string();
  std::string expected = "configuration file '" + missing + "' cannot be read: No such file or directory";
  auto pkid = Idevid({"pkid", "--tcti", Tcti(), "--config", missing, "--socket", Socket()});
  EXPECT_EQ(pkid.exit_status, 4);
  EXPECT_NE(pkid.err.find(expected), std::string::npos) << pkid.err;
  auto ssli = Idevid({"ssli", "connect", "--config", missing, "--profile", "p", "--peer", "127.0.0.1:1"});
  EXPECT_EQ(ssli.exit_status, 4);
  EXPECT_NE(ssli.err.find(expected), std::string::npos) << ssli.err;
}

// The TPM goes away under a running pkid: pkid says so naming the TPM, and loads idev-id by
// itself once the TPM answers again, without a restart.
TEST_F(PkidTest, IdevidIsLoadedAgainByItselfWhenTheTpmAnswersAgain) {
  Provision("CW1");
  StartPkid({"--tpm-retry-first-ms", "20", "--tpm-retry-max-ms", "200"});
  EXPECT_NE(Ask(kShowIdevid).text.find("Load status: loaded at"), std::string::npos);
  swtpm_->Stop();
  std::string away = fmt::format("the TPM at {} does not answer: ", Tcti());
  EXPECT_TRUE(PollUntil([&] { return Ask(kShowIdevid).text.find(away) != std::string::npos; },
                        std::chrono::seconds(10)))
      << Ask(kShowIdevid).text << LogTail(dir() / "pkid.log");
  CommandResponse down = Ask(kShowIdevid);
  EXPECT_NE(down.text.find("Load status: not loaded"), std::string::npos) << down.text;
  EXPECT_NE(down.text.find("; retrying every "), std::string::npos) << down.text;
  EXPECT_EQ(down.text.find("0x01c90000"), std::string::npos) << down.text;
  StartSwtpm();  // the same state and port
  EXPECT_TRUE(
      PollUntil([&] { return Ask(kShowIdevid).text.find("Load status: loaded at") != std::string::npos; },
                std::chrono::seconds(10)))
      << Ask(kShowIdevid).text << LogTail(dir() / "pkid.log");
  EXPECT_NE(Ask(kShowIdevid).text.find("Serial number: CW1\n"), std::string::npos);
}

}  // namespace
}  // namespace idevid
