// The idevid binary's answers to a mistyped command line: which word or file was wrong, and
// exit 4 (usage), never 2 (infrastructure).
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "fixtures/tpm_fixture.h"
#include "engine/process.h"

namespace idevid {
namespace {

CommandOutput Idevid(std::vector<std::string> args) {
  args.insert(args.begin(), IDEVID_BINARY);
  auto out = RunCommand(args, {{"TSS2_LOG", "all+NONE"}}, std::chrono::seconds(60));
  EXPECT_TRUE(out) << out.error().ToString();
  return out.value_or(CommandOutput{});
}

TEST(UnknownCommandTest, NamesTheWordAndTheCommandsThereAre) {
  auto out = Idevid({"bogus"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_NE(out.err.find("unknown command 'bogus'; commands: run, tpm, factory, provision, check"),
            std::string::npos)
      << out.err;
}

TEST(UnknownCommandTest, NamesTheWordBelowACommandWithSubcommands) {
  auto out = Idevid({"factory", "bogus"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_NE(out.err.find("unknown command 'factory bogus'; factory commands: init, issue"),
            std::string::npos)
      << out.err;
}

TEST(UnknownCommandTest, EscapesTheWord) {
  auto out = Idevid({"bo\x1b[2Jgus\n"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_NE(out.err.find("unknown command 'bo\\x1b[2Jgus\\n'"), std::string::npos) << out.err;
  EXPECT_EQ(out.err.find('\x1b'), std::string::npos) << out.err;
}

// A file option naming a file that is not there: exit 4, naming the option and the file.
struct MissingFileCase {
  std::string name;
  std::vector<std::string> args;  // MISSING: the missing file; PRESENT: an existing one
  std::string option;
};

class MissingFileTest : public ::testing::TestWithParam<MissingFileCase> {
 protected:
  testing::TempDir temp_;
};

TEST_P(MissingFileTest, IsAUsageErrorNamingTheOptionAndTheFile) {
  std::string missing = (temp_.path() / "nowhere" / "missing.pem").string();
  std::string present = (temp_.path() / "present.pem").string();
  ASSERT_TRUE(WriteFileAtomic(present, std::string_view("not used\n")));
  std::vector<std::string> args = GetParam().args;
  for (auto& arg : args) arg = arg == "MISSING" ? missing : arg == "PRESENT" ? present : arg;
  auto out = Idevid(args);
  EXPECT_EQ(out.exit_status, 4) << out.err;
  EXPECT_NE(out.err.find(GetParam().option + ": no such file \"" + missing + "\""), std::string::npos)
      << out.err;
}

INSTANTIATE_TEST_SUITE_P(
    Options, MissingFileTest,
    ::testing::Values(
        MissingFileCase{"CheckFactoryCa",
                        {"check", "--tcti", "swtpm:host=127.0.0.1,port=1", "--factory-ca", "MISSING"},
                        "--factory-ca"},
        MissingFileCase{"CloudCert",
                        {"cloud", "--cert", "MISSING", "--key", "PRESENT", "--factory-ca", "PRESENT"},
                        "--cert"},
        MissingFileCase{"CloudKey",
                        {"cloud", "--cert", "PRESENT", "--key", "MISSING", "--factory-ca", "PRESENT"},
                        "--key"},
        MissingFileCase{"CloudFactoryCa",
                        {"cloud", "--cert", "PRESENT", "--key", "PRESENT", "--factory-ca", "MISSING"},
                        "--factory-ca"},
        MissingFileCase{"CloudInventory",
                        {"cloud", "--cert", "PRESENT", "--key", "PRESENT", "--factory-ca", "PRESENT",
                         "--inventory", "MISSING"},
                        "--inventory"},
        MissingFileCase{"RunFactoryCa", {"run", "--no-provision", "--factory-ca", "MISSING"},
                        "--factory-ca"},
        MissingFileCase{"ProvisionOwnerAuth",
                        {"provision", "--tcti", "swtpm:host=127.0.0.1,port=1", "--factory", "PRESENT",
                         "--serial", "CW1", "--model", "M", "--owner-auth-file", "MISSING"},
                        "--owner-auth-file"},
        MissingFileCase{"FactoryIssueEkCert",
                        {"factory", "issue", "--dir", "PRESENT", "--serial", "CW1", "--model", "M",
                         "--out", "PRESENT", "--ek-cert", "MISSING"},
                        "--ek-cert"}),
    [](const auto& info) { return info.param.name; });

TEST(MissingFileTest, EscapesTheFileName) {
  auto out = Idevid({"check", "--tcti", "swtpm:host=127.0.0.1,port=1", "--factory-ca", "ca\x1b[2J.pem"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_NE(out.err.find("--factory-ca: no such file \"ca\\x1b[2J.pem\""), std::string::npos) << out.err;
  EXPECT_EQ(out.err.find('\x1b'), std::string::npos) << out.err;
}

}  // namespace
}  // namespace idevid
