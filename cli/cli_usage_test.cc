// The idevid binary's answers to a mistyped command line: which word or file was wrong, and
// exit 4 (usage), never 2 (infrastructure).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file_io.h"
#include "engine/process.h"
#include "fixtures/tpm_fixture.h"

namespace idevid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CommandOutput Idevid(std::vector<std::string> args) {
  args.insert(args.begin(), IDEVID_BINARY);
  auto out = RunCommand(args, {{"TSS2_LOG", "all+NONE"}}, std::chrono::seconds(60));
  EXPECT_TRUE(out) << out.error().ToString();
  return out.value_or(CommandOutput{});
}

TEST(UnknownCommandTest, NamesTheWordAndTheCommandsThereAre) {
  auto out = Idevid({"bogus"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_THAT(out.err, HasSubstr("unknown command 'bogus'; commands: run, tpm, factory, provision, check"));
}

TEST(UnknownCommandTest, NamesTheWordBelowACommandWithSubcommands) {
  auto out = Idevid({"factory", "bogus"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_THAT(out.err, HasSubstr("unknown command 'factory bogus'; factory commands: init, issue"));
}

TEST(UnknownCommandTest, EscapesTheWord) {
  auto out = Idevid({"bo\x1b[2Jgus\n"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_THAT(out.err, HasSubstr("unknown command 'bo\\x1b[2Jgus\\n'"));
  EXPECT_THAT(out.err, Not(HasSubstr("\x1b")));
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
  EXPECT_THAT(out.err, HasSubstr(GetParam().option + ": no such file \"" + missing + "\""));
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
        MissingFileCase{"RunFactoryCa", {"run", "--no-provision", "--factory-ca", "MISSING"}, "--factory-ca"},
        MissingFileCase{"ProvisionOwnerAuth",
                        {"provision", "--tcti", "swtpm:host=127.0.0.1,port=1", "--factory", "PRESENT",
                         "--serial", "CW1", "--model", "M", "--owner-auth-file", "MISSING"},
                        "--owner-auth-file"},
        MissingFileCase{"FactoryIssueEkCert",
                        {"factory", "issue", "--dir", "PRESENT", "--serial", "CW1", "--model", "M", "--out",
                         "PRESENT", "--ek-cert", "MISSING"},
                        "--ek-cert"}),
    [](const auto& instance) { return instance.param.name; });

TEST(MissingFileTest, EscapesTheFileName) {
  auto out = Idevid({"check", "--tcti", "swtpm:host=127.0.0.1,port=1", "--factory-ca", "ca\x1b[2J.pem"});
  EXPECT_EQ(out.exit_status, 4);
  EXPECT_THAT(out.err, HasSubstr("--factory-ca: no such file \"ca\\x1b[2J.pem\""));
  EXPECT_THAT(out.err, Not(HasSubstr("\x1b")));
}

// An address to listen on that is not HOST:PORT: exit 4 before anything starts, naming the option.
TEST(CloudListenTest, AnAddressThatIsNotHostPortIsAUsageError) {
  testing::TempDir temp;
  std::string present = (temp.path() / "present.pem").string();
  ASSERT_TRUE(WriteFileAtomic(present, std::string_view("not used\n")));
  for (const auto& [listen, why] :
       {std::pair{"localhost", "is not HOST:PORT"}, std::pair{"127.0.0.1:http", "has no valid port"},
        std::pair{"127.0.0.1:70000", "has no valid port"}}) {
    auto out =
        Idevid({"cloud", "--listen", listen, "--cert", present, "--key", present, "--factory-ca", present});
    EXPECT_EQ(out.exit_status, 4) << out.err;
    EXPECT_THAT(out.err, HasSubstr(std::string("idevid: --listen: \"") + listen + "\" " + why));
  }
}

}  // namespace
}  // namespace idevid
