#include "provisioning/issued_units.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/sha.h>

#include <cerrno>

#include "core/unique_fd.h"
#include "core/x509.h"

namespace idevid {

IssuedUnits::IssuedUnits(std::filesystem::path factory_dir) : dir_(std::move(factory_dir) / "issued") {}

// Files are named by the serial's SHA-256: a serial is PrintableString, which allows '/'.
std::filesystem::path IssuedUnits::FileOf(const std::string& serial) const {
  std::uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(serial.data()), serial.size(), digest);
  return dir_ / (Hex(digest) + ".json");
}

bool IssuedUnits::Contains(const std::string& serial) const {
  std::error_code ec;
  return std::filesystem::exists(FileOf(serial), ec);
}

Result<bool> IssuedUnits::Reserve(const std::string& serial, const nlohmann::json& record) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return ErrnoError(ec.value(), "cannot create " + dir_.string());
  auto path = FileOf(serial);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    if (errno == EEXIST) return false;
    return ErrnoError(errno, "cannot reserve serial in " + path.string());
  }
  std::string text = record.dump() + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd.get()) != 0) {
    int error = errno;
    std::filesystem::remove(path, ec);
    return ErrnoError(error, "cannot write " + path.string());
  }
  return true;
}

void IssuedUnits::Release(const std::string& serial) {
  std::error_code ec;
  std::filesystem::remove(FileOf(serial), ec);
}

}  // namespace idevid
