// How `show security pki node-local local-certificate` presents a store entry: the appliance's
// indented "Field: value" text, and the same facts as JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "device/pkid/node_local_store.h"

namespace idevid {

enum class ViewDetail { kBrief, kDetail };

std::string FormatEntry(const StoreEntry& entry, ViewDetail detail);
nlohmann::json EntryJson(const StoreEntry& entry);

}  // namespace idevid
