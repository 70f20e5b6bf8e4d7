#include "storage/pg_codec.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace perfwatch::storage {

std::string to_pg_timestamp(profile::TimePoint t) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(t.time_since_epoch());
  auto secs = floor<seconds>(us);
  std::time_t tt = secs.count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>((us - secs).count()));
  return buf;
}

profile::TimePoint from_epoch_us(std::int64_t us) {
  return profile::TimePoint(std::chrono::duration_cast<profile::Clock::duration>(std::chrono::microseconds(us)));
}

std::int64_t to_epoch_us(profile::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::string epoch_us_sql(std::string_view column) {
  // extract(epoch) is numeric since PostgreSQL 14, so this is exact.
  return "(extract(epoch FROM " + std::string(column) + ") * 1000000)::bigint";
}

std::vector<std::int64_t> parse_int_array(std::string_view text) {
  std::vector<std::int64_t> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
      std::int64_t v = 0;
      auto [next, ec] = std::from_chars(p, end, v);
      if (ec == std::errc()) out.push_back(v);
      p = next == p ? p + 1 : next;
    } else {
      ++p;
    }
  }
  return out;
}

std::pair<std::string, std::string> bucket_array_literals(const profile::LatencyHistogram& h) {
  std::vector<std::uint32_t> index;
  std::vector<std::uint64_t> counts;
  for (const auto& [bucket, count] : h.buckets) {
    index.push_back(bucket);
    counts.push_back(count);
  }
  return {int_array_literal(index), int_array_literal(counts)};
}

void read_bucket_arrays(std::string_view index, std::string_view count, profile::LatencyHistogram& h) {
  const std::vector<std::int64_t> buckets = parse_int_array(index), counts = parse_int_array(count);
  h.buckets.clear();
  for (std::size_t i = 0; i < buckets.size() && i < counts.size(); ++i)
    if (buckets[i] >= 0 && buckets[i] < static_cast<std::int64_t>(profile::latency_bucket_count) && counts[i] > 0)
      h.buckets.emplace_back(static_cast<std::uint32_t>(buckets[i]), static_cast<std::uint64_t>(counts[i]));
}

}  // namespace perfwatch::storage
