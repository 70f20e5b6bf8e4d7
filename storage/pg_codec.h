#pragma once
// Conversions between the profile model and PostgreSQL's text forms, shared by writer and queries.
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/profile.h"
#include "common/result.h"
#include "common/utf8.h"

namespace perfwatch::storage {

// timestamptz text in UTC with microseconds ("2026-11-24 10:00:00.123456+00"); PostgreSQL keeps
// microseconds, so finer precision is truncated.
std::string to_pg_timestamp(profile::TimePoint t);
profile::TimePoint from_epoch_us(std::int64_t us);
std::int64_t to_epoch_us(profile::TimePoint t);
// SQL expression giving a timestamptz column as integer microseconds since the epoch.
std::string epoch_us_sql(std::string_view column);

// Array literal of integers, "{1,2,3}", for a parameter cast to bigint[] / integer[].
template <typename Range>
std::string int_array_literal(const Range& values) {
  std::string out = "{";
  for (const auto& v : values) {
    if (out.size() > 1) out.push_back(',');
    out.append(std::to_string(v));
  }
  out.push_back('}');
  return out;
}
// Parses an integer array as PostgreSQL prints it ("{1,-2,3}").
std::vector<std::int64_t> parse_int_array(std::string_view text);

// Runs a database operation, turning an exception (connection lost, SQL error) into an error result
// that says what was being done.
template <typename F>
auto guarded(const char* what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    return make_error(std::string(what) + ": " + e.what());
  }
}

// A latency histogram's buckets as the two array literals of a row (bucket_index smallint[],
// bucket_count bigint[]), and back. Buckets outside the scheme are dropped when read.
std::pair<std::string, std::string> bucket_array_literals(const profile::LatencyHistogram& h);
void read_bucket_arrays(std::string_view index, std::string_view count, profile::LatencyHistogram& h);

// PostgreSQL text must be valid UTF-8 without NUL; symbol names read from binaries need not be.
// Invalid bytes and NULs become U+FFFD, so a bad name cannot make a whole window unwritable.
inline std::string sanitize_utf8(std::string_view text) { return utf8::sanitize(text); }

}  // namespace perfwatch::storage
