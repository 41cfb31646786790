// What `idevid run` shows while it runs: which suite and scenario, and each outcome as it
// finishes. On a terminal the running scenario's line is rewritten in place with its current
// phase and outcomes are coloured; elsewhere (a CI log, a pipe) plain lines, one per scenario.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>

#include "engine/scenario.h"

namespace idevid {

class RunProgress {
 public:
  // Writes to `out` (not owned; must outlive this); `terminal` selects the live form, whose
  // rewritten line is cut to `width` columns (0: not cut) so that it never wraps.
  RunProgress(std::ostream& out, bool terminal, std::size_t total, std::size_t width = 0)
      : out_(out), terminal_(terminal), total_(total), width_(width) {}

  void ScenarioStarted(const Scenario& scenario);
  // Live form only: the phase now running in the current scenario.
  void PhaseStarted(const std::string& phase);
  void ScenarioFinished(const ScenarioRecord& record);

 private:
  std::string Heading() const;
  void Live(const std::string& line);

  std::ostream& out_;
  bool terminal_;
  std::size_t total_;
  std::size_t width_;
  std::size_t index_ = 0;
  std::string suite_;
  std::string name_;
};

// Whether `fd` is a terminal that understands ANSI escapes (not when TERM is "dumb" or unset).
bool IsAnsiTerminal(int fd);

// The width of the terminal at `fd` in columns; 0 when unknown.
std::size_t TerminalWidth(int fd);

}  // namespace idevid
