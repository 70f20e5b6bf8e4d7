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

 private:
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace perfwatch::storage
