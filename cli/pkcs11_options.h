// The PKCS#11 options of the commands that create or load a factory whose CA keys are in a token.
// The PIN is never an option: IDEVID_PKCS11_PIN or a PIN file.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace idevid::cli {

// What `idevid factory init` is given for a factory whose keys are in a token.
struct Pkcs11InitArgs {
  std::string uri;       // empty: key files
  std::string module;    // empty: p11-kit's proxy module
  std::string pin_file;  // empty: IDEVID_PKCS11_PIN
};

// Adds --pkcs11, --pkcs11-module and --pkcs11-pin-file to `cmd` (factory init).
void AddPkcs11InitOptions(CLI::App& cmd, Pkcs11InitArgs& args);

// Adds --pkcs11-pin-file to a command that loads a factory directory, for a factory whose keys are
// in a token.
void AddPkcs11PinFileOption(CLI::App& cmd, std::string& pin_file);

}  // namespace idevid::cli
