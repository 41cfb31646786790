// The scenario suites `idevid run` runs against the real pkid, SSL-I and cloud code.
#pragma once

#include <string>
#include <vector>

#include "engine/scenario.h"

namespace idevid {

std::vector<Scenario> BootLoadSuite();       // boot-load
std::vector<Scenario> VerifyRefusalSuite();  // verify-refusal
std::vector<Scenario> SsliSuites();          // ssli-tpm, ssli-file
std::vector<Scenario> NegativeSuite();       // negative
std::vector<Scenario> FaultsSuite();         // faults
std::vector<Scenario> EnrolmentSuite();      // enrolment
std::vector<Scenario> AttestationSuite();    // attestation
std::vector<Scenario> SoakSuite();           // soak (on request only)
std::vector<Scenario> PerformanceSuite();    // performance

// Every scenario, suite by suite, in the order they run.
std::vector<Scenario> AllScenarios();

// The suite names, for --suite and its help.
std::vector<std::string> SuiteNames();

// The suites a run without --suite leaves out (they take minutes): soak.
std::vector<std::string> OnRequestSuites();

}  // namespace idevid
