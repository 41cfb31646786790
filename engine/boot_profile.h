// A boot profile (YAML): the components of the synthetic measured boot of a unit, so that a test
// can boot another kernel. Every key is optional; a component it does not name is the default
// profile's.
//
//   name: lab-kernel-6.6
//   firmware:     {name: "SyntheticFW 2.10", text: "firmware image 2.10"}
//   boot_loader:  {name: '\EFI\debian\shimx64.efi', path: shimx64.efi}
//   kernel:       {name: /boot/vmlinuz-6.6.0, digest:
//   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08} initrd:       {name:
//   /boot/initrd.img-6.6.0, path: /srv/images/initrd.img} command_line: {text: "root=/dev/vda2 ro
//   console=ttyS0"}
//
// A component is measured as the SHA-256 of the file at `path` (relative to the profile's
// directory), of `text`, or as the literal `digest` (64 hex digits): one of the three. The
// command line is measured as its text, so it takes `text` only.
#pragma once

#include <filesystem>
#include <string>

#include "core/result.h"
#include "core/x509.h"

namespace idevid {

// One measured component: the name its events carry and the SHA-256 extended for it.
struct BootComponent {
  std::string name;
  Bytes digest;
  bool operator==(const BootComponent&) const = default;
};

// The chain a unit boots.
struct BootProfile {
  std::string name = "default";
  BootComponent firmware;
  BootComponent boot_loader;
  BootComponent kernel;
  BootComponent initrd;
  std::string command_line;  // measured as its text (PCR 8, as grub measures it)
  bool operator==(const BootProfile&) const = default;
};

// The chain of the units `idevid tpm start --manufacture` and `idevid run` boot by default: a
// Debian-like shim, grub and Linux on synthetic firmware. Never fails.
BootProfile DefaultBootProfile();

// Parses profile text; `name` (the file) and `base` (where relative paths start) are for errors
// and paths. Bad input is a kConfig error "FILE:LINE:COLUMN: what": kSyntax (not YAML, not a
// mapping), kUnknownStatement (a key), kBadValue (a value of the wrong kind, a digest that is
// not 64 hex digits), kMissing (a component without name or measurement), kConflict (two
// measurements, or a key given twice), kFile (a file it names that cannot be read).
Result<BootProfile> ParseBootProfile(const std::string& text, const std::string& name,
                                     const std::filesystem::path& base);

// Reads and parses a profile; a file that cannot be read is a kIo error.
Result<BootProfile> LoadBootProfile(const std::filesystem::path& path);

}  // namespace idevid
