#include "common/time_text.h"

#include <charconv>
#include <cstdint>
#include <ctime>
#include <string>

namespace perfwatch {

Result<profile::TimePoint> parse_time(std::string_view text) {
  std::int64_t epoch = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), epoch);
  if (ec == std::errc{} && ptr == text.data() + text.size())
    return profile::TimePoint(std::chrono::seconds(epoch));

  std::string s(text);
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) rest = strptime(s.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (!rest) return make_error("cannot read time '" + s + "': use 2026-11-24T10:00:00Z or Unix seconds");
  if (*rest == '.')
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
    }
  if (*rest != 'Z' && *rest != '\0')
    return make_error("time '" + s + "' must be UTC (end it with Z)");
  if (*rest == 'Z' && rest[1] != '\0') return make_error("unexpected text after the time in '" + s + "'");
  return profile::TimePoint(std::chrono::seconds(timegm(&tm)));
}

std::string format_time(profile::TimePoint t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace perfwatch
