#pragma once
// Rollups: sums per 5-minute and 1-hour bucket, so ranges of hours or days read a few rows per key
// instead of one per window. Two kinds: profile samples per target and stack (migration 0006), and
// latency histograms per operation (migration 0007). refresh_rollups() (re)builds the buckets that are
// complete and missing or stale; readers plan a range as fresh hour buckets, then fresh 5-minute
// buckets, then raw windows for the rest.
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <pqxx/connection>
#include <pqxx/row>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/profile.h"
#include "common/result.h"
#include "storage/store.h"

namespace perfwatch::storage {

// Coarsest first: a range is covered by hours where it can be, by 5-minute buckets elsewhere.
inline constexpr std::array<int, 2> rollup_resolutions = {3600, 300};

// What a rollup sums: samples per target (rollup_buckets, rollup_samples) or latency histograms per
// operation (latency_rollups).
enum class RollupKind { samples, latency };

struct RollupStats {
  std::uint64_t buckets_built = 0;    // buckets (re)summed
  std::uint64_t buckets_dropped = 0;  // buckets whose windows retention removed
};

// Builds every bucket, of both kinds, that ended at least `settle` before `now` and whose rollup is
// missing or no longer matches its windows, and drops buckets with no windows left. At most
// `max_buckets` are built per call, oldest first (samples before latency), so one call stays short;
// call again while it returns that many.
Result<RollupStats> refresh_rollups(pqxx::connection& conn, profile::TimePoint now,
                                    std::chrono::seconds settle = std::chrono::seconds(60), int max_buckets = 500);

// A time range of one key (a target, or an operation) read from rollup buckets or from raw windows.
struct RollupPlan {
  struct Bucket {
    int id;
    int resolution;
    profile::TimePoint start;
  };
  struct Raw {
    int id;
    profile::TimePoint from, to;
  };
  std::vector<Bucket> buckets;
  std::vector<Raw> raw;
};

// Splits [from, to) of each key into fresh buckets of the given resolutions (coarsest first) and raw
// pieces.
RollupPlan plan_rollups(pqxx::transaction_base& tx, RollupKind kind, const std::vector<int>& ids,
                        profile::TimePoint from, profile::TimePoint to,
                        std::span<const int> resolutions = rollup_resolutions);

// A plan as one query: `bucket_select` (a SELECT from the rollup table) and `raw_select` (the same
// columns from the raw table), each completed with one WHERE per piece with constant bounds, so the
// planner prunes partitions and uses the keys; the pieces joined by UNION ALL. `sql` is empty when the
// plan has no pieces.
struct PlanQuery {
  std::string sql;
  std::vector<std::string> params;
};
PlanQuery plan_query(const RollupPlan& plan, RollupKind kind, const std::string& bucket_select,
                     const std::string& raw_select);

// The latency columns the latency table and latency_rollups share, in the order read_latency_columns
// reads them.
inline constexpr const char* latency_columns =
    "calls, sum_ns, max_ns, slow, tier, threshold_ns, scheme, bucket_index::text, bucket_count::text";
struct LatencyCells {
  profile::LatencyHistogram histogram;  // buckets only when stored in the current scheme
  profile::Tier tier = profile::Tier::none;
  std::uint64_t threshold_ns = 0;
};
LatencyCells read_latency_columns(const pqxx::row& row, int first);

// Refreshes rollups in the background, on its own connection, every `interval` (perfwatchd runs one).
class RollupWorker {
 public:
  RollupWorker(ConnectOptions options, std::chrono::seconds interval = std::chrono::seconds(60));
  ~RollupWorker();  // stops and joins
  RollupWorker(const RollupWorker&) = delete;
  RollupWorker& operator=(const RollupWorker&) = delete;

 private:
  void run();

  ConnectOptions options_;
  std::chrono::seconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace perfwatch::storage
