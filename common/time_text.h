#pragma once
// Points in time as text, for the config and the command line: RFC 3339 UTC ("2026-11-24T10:00:00Z",
// fractional seconds ignored) or Unix seconds.
#include <string>
#include <string_view>

#include "common/duration.h"
#include "common/profile.h"
#include "common/result.h"

namespace perfwatch {

// Times read from people and requests lie from 1970 to 2200: nanoseconds since 1970 overflow past 2262.
inline constexpr std::chrono::seconds latest_time{7'258'118'400};  // 2200-01-01T00:00:00Z

// An error for a time outside [1970, 2200).
Result<profile::TimePoint> parse_time(std::string_view text);
// `since` before `now`: an error when that is before 1970 (or `since` is not above 0).
Result<profile::TimePoint> time_before(profile::TimePoint now, Duration since);
std::string format_time(profile::TimePoint t);  // RFC 3339 UTC, second precision

}  // namespace perfwatch
