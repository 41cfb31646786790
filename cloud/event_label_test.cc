#include "cloud/event_label.h"

#include <string_view>

#include <gtest/gtest.h>

#include "cloud/testing/event_data.h"

namespace idevid {
namespace {

using testing::ImageLoadData;
using testing::PutLe;
using testing::PutUtf16;

LogEvent Event(std::uint32_t type, Bytes data) { return LogEvent{4, type, {}, std::move(data)}; }

TEST(EventLabel, NamesTheFileOfAnImageLoad) {
  EXPECT_EQ(EventLabel(Event(kEvEfiBootServicesApplication, ImageLoadData("\\EFI\\BOOT\\vmlinuz-6.1"))),
            "\\EFI\\BOOT\\vmlinuz-6.1");
}

TEST(EventLabel, NamesAVariable) {
  Bytes data(16, 0x61);  // the GUID
  PutLe(data, 10, 8);
  PutLe(data, 1, 8);
  PutUtf16(data, "SecureBoot");
  data.push_back(1);
  EXPECT_EQ(EventLabel(Event(kEvEfiVariableDriverConfig, data)), "SecureBoot");
}

TEST(EventLabel, ShowsTextInAsciiOrUtf16) {
  EXPECT_EQ(EventLabel(Event(kEvIpl, Bytes{'g', 'r', 'u', 'b', 0})), "grub");
  Bytes version;
  PutUtf16(version, "firmware 1.2");
  PutLe(version, 0, 2);
  EXPECT_EQ(EventLabel(Event(kEvSCrtmVersion, version)), "firmware 1.2");
}

TEST(EventLabel, HostileOrBinaryDataHasNoLabel) {
  EXPECT_EQ(EventLabel(Event(kEvSeparator, Bytes{0, 0, 0, 0})), "");
  EXPECT_EQ(EventLabel(Event(kEvIpl, Bytes{'a', 0x1b, 'b'})), "");
  EXPECT_EQ(EventLabel(Event(kEvEfiBootServicesApplication, Bytes(31, 0))), "");
  // A device path length past the data, and a node length past the path.
  EXPECT_EQ(EventLabel(Event(kEvEfiBootServicesApplication, ImageLoadData("a.efi", 1000))), "");
  Bytes node_too_long = ImageLoadData("a.efi");
  node_too_long[34] = 0xff;
  EXPECT_EQ(EventLabel(Event(kEvEfiBootServicesApplication, node_too_long)), "");
  Bytes name_too_long(16, 0);
  PutLe(name_too_long, ~0ull, 8);
  PutLe(name_too_long, 0, 8);
  EXPECT_EQ(EventLabel(Event(kEvEfiVariableDriverConfig, name_too_long)), "");
}

}  // namespace
}  // namespace idevid
