// Text made safe for HTML element content and attribute values.
#pragma once

#include <string>
#include <string_view>

namespace idevid {

// Replaces < > & " with their character references.
std::string HtmlEscape(std::string_view text);

}  // namespace idevid
