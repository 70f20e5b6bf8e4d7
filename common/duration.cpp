#include "duration.h"

#include <charconv>
#include <cstdint>
#include <limits>

namespace perfwatch {

Result<Duration> parse_duration(std::string_view text) {
  std::int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc{} || ptr == begin || value < 0)
    return make_error("expected a duration such as 250ms, 2s, 10m or 14d, got '" + std::string(text) + "'");
  std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  std::int64_t micros_per_unit = 0;
  if (unit == "us") micros_per_unit = 1;
  else if (unit == "ms") micros_per_unit = 1000;
  else if (unit == "s") micros_per_unit = 1000 * 1000;
  else if (unit == "m") micros_per_unit = 60LL * 1000 * 1000;
  else if (unit == "h") micros_per_unit = 3600LL * 1000 * 1000;
  else if (unit == "d") micros_per_unit = 86400LL * 1000 * 1000;
  else
    return make_error("unknown duration unit in '" + std::string(text) + "' (use us, ms, s, m, h or d)");
  if (value > std::numeric_limits<std::int64_t>::max() / micros_per_unit)
    return make_error("duration '" + std::string(text) + "' is too large");
  return Duration(value * micros_per_unit);
}

std::string format_duration(Duration d) {
  struct Unit { std::int64_t us; const char* name; };
  static constexpr Unit units[] = {{86400LL * 1000000, "d"}, {3600LL * 1000000, "h"}, {60LL * 1000000, "m"},
                                   {1000000, "s"}, {1000, "ms"}, {1, "us"}};
  std::int64_t us = d.count();
  if (us == 0) return "0s";
  for (const Unit& u : units)
    if (us % u.us == 0) return std::to_string(us / u.us) + u.name;
  return std::to_string(us) + "us";
}

}  // namespace perfwatch
