#pragma once
// Points in time as text, for the config and the command line: RFC 3339 UTC ("2026-11-24T10:00:00Z",
// fractional seconds ignored) or Unix seconds.
#include <string>
#include <string_view>

#include "common/profile.h"
#include "common/result.h"

namespace perfwatch {

Result<profile::TimePoint> parse_time(std::string_view text);
std::string format_time(profile::TimePoint t);  // RFC 3339 UTC, second precision

}  // namespace perfwatch
