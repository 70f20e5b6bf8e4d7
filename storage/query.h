#pragma once
// The read side of storage: what the CLI and the dashboard show, through one layer so both give the
// same answers. Time ranges select windows by their start: [from, to).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/connection>
#include <pqxx/transaction_base>
#include <string>
#include <unordered_map>
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
  std::string target;
  std::string name;
  std::string source;  // uprobe, python, syscall, statsd
  std::string spec;
  profile::Tier tier = profile::Tier::none;  // as of the newest window in range
  std::uint64_t threshold_ns = 0;            // as of the newest window in range
  std::uint64_t windows = 0;                 // 0: no calls in range (listed only on request)
  profile::LatencyHistogram histogram;       // merged bucket by bucket
  // Operations without calls in range: the end of their newest stored window (before or after it).
  std::optional<profile::TimePoint> last_window_end;
};

// One point of an operation's latency series: a window, or the windows of a step (a rollup bucket's
// length), merged.
struct LatencyPoint {
  profile::TimePoint start;  // the first window's
  std::uint64_t calls = 0;
  std::uint64_t p50_ns = 0, p95_ns = 0, p99_ns = 0, max_ns = 0;
  std::uint64_t slow = 0;
  std::uint64_t threshold_ns = 0;  // the newest window's
};

struct LatencySeries {
  std::string name;  // the operation
  std::vector<LatencyPoint> points;  // oldest first
};

// An alert's state change (alerts/evaluator.h): pending, firing, resolved or cancelled.
struct AlertEventRecord {
  profile::TimePoint at;
  std::string state;
  double value = 0;
  std::string summary;
};

// A notification of the alert to one receiver and what became of it.
struct AlertDeliveryRecord {
  std::string receiver;
  std::string status;  // firing | resolved
  std::string state;   // pending | delivered | failed
  std::int32_t attempts = 0;
  profile::TimePoint queued_at;
  std::optional<profile::TimePoint> done_at;
  std::string last_error;
};

struct AlertRecord {
  std::string fingerprint;
  std::string host;
  std::string rule;   // tier, burn_rate, cache_floor, latency_regression, cpu_regression
  std::string state;  // inactive | pending | firing
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;  // summary, description, dashboard, and per rule more
  double value = 0;
  std::optional<profile::TimePoint> starts_at;  // when it last fired
  std::optional<profile::TimePoint> ends_at;    // when it last resolved
  profile::TimePoint updated_at;
  std::vector<AlertEventRecord> history;          // in range, oldest first
  std::vector<AlertDeliveryRecord> deliveries;    // queued in range, oldest first
};

// Which alerts Query::alerts lists; empty fields select all.
struct AlertFilter {
  std::string target;  // the alert's "target" label
  std::string state;   // inactive | pending | firing
};

struct DeployRecord {
  std::string host;
  std::string target;
  profile::TimePoint at;
  std::string summary;
  std::vector<profile::DeployChange> changes;
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

// A host's probe families as of its newest window in a range: what ran, and why what did not.
struct HostProbes {
  std::string host;
  profile::TimePoint window_end;
  std::vector<profile::ProbeState> probes;  // in family order; families this build does not know are left out
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
  // Operations with calls in range, merged over it (fresh rollups where they cover it), by target and
  // name: of `target` ("" = every target), only `operation` when not "". With `with_idle`, also the
  // operations of those targets that have windows stored only outside the range (windows = 0).
  Result<std::vector<OperationLatency>> latency(const std::string& host, const std::string& target,
                                                const std::string& operation, TimeRange range, bool with_idle = false);
  // The target's operations (only `operation` when not "") as series for charts, by name: a point per
  // window when `step_s` is 0, else a point per step of that many seconds (one of rollup_resolutions,
  // storage/rollups.h), aligned on the epoch and read from rollups where they are fresh.
  Result<std::vector<LatencySeries>> latency_series(const std::string& host, const std::string& target,
                                                    const std::string& operation, TimeRange range, int step_s = 0);
  // Latency collection health summed over the range's windows.
  Result<profile::LatencyStats> latency_health(const std::string& host, TimeRange range);
  // Alerts that changed state in range or are pending or firing now, firing first, then the most
  // recently changed; with their history and deliveries in range.
  Result<std::vector<AlertRecord>> alerts(const std::string& host, TimeRange range, const AlertFilter& filter = {});
  // Deploy markers in range, oldest first; target "" means every target.
  Result<std::vector<DeployRecord>> deploys(const std::string& host, const std::string& target, TimeRange range);
  // The target's caches with lookups or misses in range, by name.
  Result<std::vector<CacheSummary>> caches(const std::string& host, const std::string& target, TimeRange range);
  // One cache per window, oldest first.
  Result<std::vector<CachePoint>> cache_series(const std::string& host, const std::string& target,
                                               const std::string& cache, TimeRange range);
  Result<CacheHealth> cache_health(const std::string& host, TimeRange range);
  // Per host with a window in range that stored them (every host's when host is ""), by name: its probe
  // families' states as of the newest such window.
  Result<std::vector<HostProbes>> probe_states(const std::string& host, TimeRange range);

 private:
  // Stacks and frames are content-addressed (storage/ids.h): an id always means the same frames and
  // names, so what one profile fetched serves the next, and a profile query reads only counts. Bounded:
  // emptied before a profile that would take it past these limits.
  static constexpr std::size_t max_cached_stacks = 500'000;
  static constexpr std::size_t max_cached_frames = 500'000;
  // Fetches what the cache lacks of these stacks and of their frames.
  void fill_stack_cache(pqxx::transaction_base& tx, const std::vector<std::int64_t>& stack_ids);

  std::unique_ptr<pqxx::connection> conn_;
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> stack_frames_;  // stack id -> frame ids, root first
  std::unordered_map<std::int64_t, profile::Frame> frames_;
};

}  // namespace perfwatch::storage
