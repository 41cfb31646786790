// A short, printable name for what a measured-boot event measured, for findings that name an
// event: the file of an image load, the name of a UEFI variable, or the event's text.
#pragma once

#include <string>

#include "core/event_log.h"

namespace idevid {

// The event's label, printable ASCII as the unit sent it (echo it with QuotedDisplayText): the file path of a
// UEFI_IMAGE_LOAD_EVENT (PFP §10.2.3, File Path Media nodes of its device path), the UnicodeName
// of a UEFI_VARIABLE_DATA (PFP §10.2.6), or data that is text (ASCII or UTF-16LE, NUL-terminated
// or not). Empty when the data is none of these. Never fails: the data is hostile and every
// length in it is checked.
std::string EventLabel(const LogEvent& event);

}  // namespace idevid
