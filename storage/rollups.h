#pragma once
// Rollups of the samples table (migration 0006): sums per target, stack and 5-minute / 1-hour bucket.
// refresh_rollups() (re)builds the buckets that are complete and missing or stale; Query::profile
// reads a range as fresh hour buckets, then fresh 5-minute buckets, then raw windows for the rest.
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <pqxx/connection>
#include <thread>
#include <vector>

#include "common/profile.h"
#include "common/result.h"
#include "storage/store.h"

namespace perfwatch::storage {

// Coarsest first: a range is covered by hours where it can be, by 5-minute buckets elsewhere.
inline constexpr std::array<int, 2> rollup_resolutions = {3600, 300};

struct RollupStats {
  std::uint64_t buckets_built = 0;    // buckets (re)summed
  std::uint64_t buckets_dropped = 0;  // buckets whose windows retention removed
};

// Builds every bucket that ended at least `settle` before `now` and whose rollup is missing or no
// longer matches its windows, and drops buckets with no windows left. At most `max_buckets` are built
// per call, oldest first, so one call stays short; call again while it returns that many.
Result<RollupStats> refresh_rollups(pqxx::connection& conn, profile::TimePoint now,
                                    std::chrono::seconds settle = std::chrono::seconds(60), int max_buckets = 500);

// A time range of one target read from a rollup bucket or from raw windows.
struct RollupPlan {
  struct Bucket {
    int target_id;
    int resolution;
    profile::TimePoint start;
  };
  struct Raw {
    int target_id;
    profile::TimePoint from, to;
  };
  std::vector<Bucket> buckets;
  std::vector<Raw> raw;
};

// Splits [from, to) of each target into fresh buckets and raw pieces (for Query::profile).
RollupPlan plan_rollups(pqxx::transaction_base& tx, const std::vector<int>& target_ids, profile::TimePoint from,
                        profile::TimePoint to);

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
