#pragma once
// Durations as written in the config and on the command line: an integer and a unit,
// "250ms", "2s", "10m", "14d" (units: us, ms, s, m, h, d).
#include <chrono>
#include <string>
#include <string_view>

#include "result.h"

namespace perfwatch {

using Duration = std::chrono::microseconds;

Result<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);

}  // namespace perfwatch
