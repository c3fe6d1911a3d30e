// The inspection report: the Inspection as JSON (`vdkit inspect --output json`) and as text for people.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "fixups/inspect.h"

namespace vdkit::fixups {

nlohmann::json to_json(const Inspection& in);
std::string to_human(const Inspection& in);

}  // namespace vdkit::fixups
