#include "engine/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace idevid {
namespace {

constexpr const char* kClearLine = "\r\033[K";

const char* Colour(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass: return "\033[32m";
    case Outcome::kSkip: return "\033[33m";
    default: return "\033[31m";
  }
}

}  // namespace

std::string RunProgress::Heading() const {
  return fmt::format("[{}/{}] {}: {}", index_, total_, suite_, name_);
}

void RunProgress::ScenarioStarted(const Scenario& scenario) {
  ++index_;
  suite_ = scenario.suite;
  name_ = scenario.name;
  if (terminal_) {
    Live(Heading() + " ...");
  } else {
    out_ << Heading() << " ... " << std::flush;
  }
}

void RunProgress::PhaseStarted(const std::string& phase) {
  if (!terminal_) return;
  Live(Heading() + " ... " + phase);
}

void RunProgress::Live(const std::string& line) {
  bool cut = width_ > 4 && line.size() >= width_;
  out_ << kClearLine << (cut ? line.substr(0, width_ - 4) + "..." : line) << std::flush;
}

void RunProgress::ScenarioFinished(const ScenarioRecord& r) {
  std::string detail =
      fmt::format("({:.0f} ms){}", r.duration_ms, r.message.empty() ? "" : " - " + r.message);
  if (terminal_) {
    out_ << kClearLine << Heading() << " " << Colour(r.outcome) << OutcomeName(r.outcome) << "\033[0m "
         << detail << "\n"
         << std::flush;
  } else {
    out_ << OutcomeName(r.outcome) << " " << detail << "\n" << std::flush;
  }
}

std::size_t TerminalWidth(int fd) {
  struct winsize size {};
  return ::ioctl(fd, TIOCGWINSZ, &size) == 0 ? size.ws_col : 0;
}

bool IsAnsiTerminal(int fd) {
  const char* term = std::getenv("TERM");
  return ::isatty(fd) == 1 && term != nullptr && *term != '\0' && std::strcmp(term, "dumb") != 0;
}

}  // namespace idevid
