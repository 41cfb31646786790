// Live progress: rewritten lines on a terminal, plain lines in a log.
#include "engine/progress.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/testing/result_matchers.h"
#include "core/unique_fd.h"

namespace idevid {
namespace {

using idevid::testing::IsOk;
using ::testing::HasSubstr;

Scenario Named(const std::string& suite, const std::string& name) { return {suite, name, {}}; }

ScenarioRecord Finished(Outcome outcome, const std::string& message = "") {
  ScenarioRecord r;
  r.outcome = outcome;
  r.message = message;
  r.duration_ms = 12.4;
  return r;
}

TEST(RunProgressTest, OutsideATerminalEachScenarioIsOnePlainLine) {
  std::ostringstream out;
  RunProgress progress(out, false, 2);
  progress.ScenarioStarted(Named("boot-load", "pkid loads idev-id"));
  progress.PhaseStarted("start pkid");
  progress.ScenarioFinished(Finished(Outcome::kPass));
  progress.ScenarioStarted(Named("negative", "serial mismatch"));
  progress.ScenarioFinished(Finished(Outcome::kFail, "check: it succeeded"));
  EXPECT_EQ(out.str(),
            "[1/2] boot-load: pkid loads idev-id ... PASS (12 ms)\n"
            "[2/2] negative: serial mismatch ... FAIL (12 ms) - check: it succeeded\n");
}

TEST(RunProgressTest, OnATerminalTheLineShowsThePhaseAndIsRewritten) {
  std::ostringstream out;
  RunProgress progress(out, true, 1);
  progress.ScenarioStarted(Named("boot-load", "pkid loads idev-id"));
  progress.PhaseStarted("start pkid");
  progress.ScenarioFinished(Finished(Outcome::kPass));
  EXPECT_EQ(out.str(),
            "\r\033[K[1/1] boot-load: pkid loads idev-id ..."
            "\r\033[K[1/1] boot-load: pkid loads idev-id ... start pkid"
            "\r\033[K[1/1] boot-load: pkid loads idev-id \033[32mPASS\033[0m (12 ms)\n");
}

TEST(RunProgressTest, OnATerminalFailuresAndSkipsHaveTheirColours) {
  std::ostringstream out;
  RunProgress progress(out, true, 2);
  progress.ScenarioStarted(Named("a", "b"));
  progress.ScenarioFinished(Finished(Outcome::kError));
  progress.ScenarioStarted(Named("a", "c"));
  progress.ScenarioFinished(Finished(Outcome::kSkip, "needs swtpm"));
  EXPECT_THAT(out.str(), HasSubstr("\033[31mERROR\033[0m"));
  EXPECT_THAT(out.str(), HasSubstr("\033[33mSKIP\033[0m (12 ms) - needs swtpm\n"));
}

TEST(RunProgressTest, OnANarrowTerminalTheLiveLineIsCutSoItNeverWraps) {
  std::ostringstream out;
  RunProgress progress(out, true, 1, 30);
  progress.ScenarioStarted(Named("boot-load", "pkid loads idev-id"));
  progress.PhaseStarted("start pkid with a long phase name");
  EXPECT_EQ(out.str(),
            "\r\033[K[1/1] boot-load: pkid load..."  // 29 columns: the cursor stays on the row
            "\r\033[K[1/1] boot-load: pkid load...");
}

TEST(RunProgressTest, APipeIsNotATerminal) {
  auto pipe = OpenPipe();
  ASSERT_THAT(pipe, IsOk());
  EXPECT_FALSE(IsAnsiTerminal(pipe->write.get()));
  EXPECT_EQ(TerminalWidth(pipe->write.get()), 0u);
}

}  // namespace
}  // namespace idevid
