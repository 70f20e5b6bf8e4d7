#include "common/time_text.h"

#include <charconv>
#include <cstdint>
#include <ctime>
#include <string>

namespace perfwatch {

namespace {

Result<profile::TimePoint> within_range(std::int64_t epoch, std::string_view text) {
  if (epoch < 0 || epoch >= latest_time.count())
    return make_error("time '" + std::string(text) + "' is outside 1970 to 2200");
  return profile::TimePoint(std::chrono::seconds(epoch));
}

}  // namespace

Result<profile::TimePoint> parse_time(std::string_view text) {
  std::int64_t epoch = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), epoch);
  if (ec == std::errc{} && ptr == text.data() + text.size()) return within_range(epoch, text);
  if (ec == std::errc::result_out_of_range && ptr == text.data() + text.size())
    return make_error("time '" + std::string(text) + "' is outside 1970 to 2200");

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
  return within_range(timegm(&tm), text);
}

Result<profile::TimePoint> time_before(profile::TimePoint now, Duration since) {
  if (since.count() <= 0) return make_error("must be longer than 0");
  const auto back = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  if (since >= back) return make_error("reaches back before 1970");
  return now - std::chrono::duration_cast<profile::Clock::duration>(since);
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
