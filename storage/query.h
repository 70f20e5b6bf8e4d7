#pragma once
// The read side of storage: what the CLI and the dashboard show, through one layer so both give the
// same answers. Time ranges select windows by their start: [from, to).
#include <cstdint>
#include <memory>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "common/profile.h"
#include "common/result.h"
#include "storage/store.h"

namespace perfwatch::storage {

struct TimeRange {
  profile::TimePoint from;
  profile::TimePoint to;
};

struct TargetSummary {
  std::string host;
  std::string name;
  std::vector<std::int32_t> pids;  // matched during the newest window in range
  std::uint64_t samples = 0;       // in range
  std::uint64_t windows = 0;       // in range
  std::optional<profile::TimePoint> last_window_end;
};

// An operation's latency merged over a range (every host's when host is "").
struct OperationLatency {
  std::string name;
  std::string source;  // uprobe, python, syscall, statsd
  std::string spec;
  profile::Tier tier = profile::Tier::none;  // as of the newest window in range
  std::uint64_t threshold_ns = 0;            // as of the newest window in range
  std::uint64_t windows = 0;
  profile::LatencyHistogram histogram;  // merged bucket by bucket
};

// One window of one operation, with the percentiles computed when it was written.
struct LatencyPoint {
  profile::TimePoint start;
  profile::TimePoint end;
  std::uint64_t calls = 0;
  std::uint64_t p50_ns = 0, p95_ns = 0, p99_ns = 0, max_ns = 0;
  std::uint64_t slow = 0;
};

// A cache of a target summed over a range (every host's when host is "").
struct CacheSummary {
  std::string name;  // page_cache, llc, or an application cache's
  std::string kind;  // page, llc, statsd, usdt
  std::string spec;  // as of the newest window in range
  std::uint64_t lookups = 0, hits = 0, misses = 0;
  std::uint64_t windows = 0;
};

// One window of one cache.
struct CachePoint {
  profile::TimePoint start;
  profile::TimePoint end;
  std::uint64_t lookups = 0, hits = 0, misses = 0;
};

// Cache collection over a range: how the newest window measured the page cache and the LLC (or why
// it could not), and every process's counts summed.
struct CacheHealth {
  std::uint64_t windows = 0;
  profile::CacheSourceState page_cache;
  profile::CacheSourceState llc;
  profile::CacheCounts host;
  std::uint64_t statsd_counts = 0;
};

class Query {
 public:
  // Connects without migrating: readers need no write access. Fails with a clear message when
  // perfwatchd has never written to this database.
  static Result<std::unique_ptr<Query>> connect(const ConnectOptions& options);
  explicit Query(std::unique_ptr<pqxx::connection> conn);
  ~Query();

  // Targets with data in range; host "" means every host.
  Result<std::vector<TargetSummary>> targets(const std::string& host, TimeRange range);
  // The merged profile of one target over the range (every host's when host is ""); stacks carry
  // target_index 0.
  Result<profile::Profile> profile(const std::string& host, const std::string& target, TimeRange range);
  // What identifies the windows a profile over the range sums: their count, samples, first and last
  // start. Equal fingerprints mean the same windows (ranges select whole windows, contiguous in time),
  // so a cached answer can be reused for a slightly different range or a later request.
  Result<std::string> fingerprint(const std::string& host, const std::string& target, TimeRange range);
  // Sampler health summed over the range's windows (each window counted once per host).
  Result<profile::SamplerStats> sampler_stats(const std::string& host, TimeRange range);
  // The target's operations with calls in range (only `operation` when not ""), by name.
  Result<std::vector<OperationLatency>> latency(const std::string& host, const std::string& target,
                                                const std::string& operation, TimeRange range);
  // Per window, oldest first, for charts.
  Result<std::vector<LatencyPoint>> latency_series(const std::string& host, const std::string& target,
                                                   const std::string& operation, TimeRange range);
  // Latency collection health summed over the range's windows.
  Result<profile::LatencyStats> latency_health(const std::string& host, TimeRange range);
  // The target's caches with lookups or misses in range, by name.
  Result<std::vector<CacheSummary>> caches(const std::string& host, const std::string& target, TimeRange range);
  // One cache per window, oldest first.
  Result<std::vector<CachePoint>> cache_series(const std::string& host, const std::string& target,
                                               const std::string& cache, TimeRange range);
  Result<CacheHealth> cache_health(const std::string& host, TimeRange range);

 private:
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace perfwatch::storage
