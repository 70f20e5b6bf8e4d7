#pragma once
// Per-operation latency and the health of latency collection on /metrics. The event loop hands over
// each closed window; the HTTP threads read what it left at scrape time.
//
// Each configured operation is a Prometheus summary, labelled by target and operation only (bounded by
// the config: StatsD metric names from the network never become labels): quantiles 0.5/0.95/0.99 of
// the calls in the windows closed during the last `span` (NaN when there were none), and _count/_sum
// since perfwatchd started; beside it the slowest call of that span, the calls slower than the
// threshold (counter) and the threshold with its tier (gauge). Seven series per operation. A summary
// rather than a histogram: the quantiles come from perfwatch's own fine buckets (within 3.2%), where a
// Prometheus histogram would need a fixed, coarse set of bounds per operation.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/profile.h"
#include "dashboard/metrics.h"

namespace perfwatch::daemon {

// An operation of the running config.
struct MeteredOperation {
  std::string target;
  std::string name;
  profile::Tier tier = profile::Tier::none;
  std::uint64_t threshold_ns = 0;
};

class LatencyMetrics final : public dashboard::MetricsSource {
 public:
  explicit LatencyMetrics(std::chrono::seconds span = std::chrono::seconds(60)) : span_(span) {}

  // From the event loop, after each window: the running config's operations (an operation no longer
  // among them is no longer exported), the window (its operations with calls, its collection stats),
  // and the probe links attached now.
  void window_closed(const std::vector<MeteredOperation>& configured, const profile::WindowProfile& window,
                     std::size_t probe_links);

  void collect(dashboard::MetricsWriter& out) const override;

 private:
  struct Operation {
    profile::Tier tier = profile::Tier::none;
    std::uint64_t threshold_ns = 0;
    std::uint64_t count = 0, sum_ns = 0, slow = 0;  // since start
    std::deque<std::pair<profile::TimePoint, profile::LatencyHistogram>> recent;  // windows ended within span_
    profile::LatencyHistogram merged;  // of `recent`
  };

  const std::chrono::seconds span_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Operation> operations_;  // by (target, name)
  profile::LatencyStats totals_;  // since start
  std::size_t probe_links_ = 0;
};

}  // namespace perfwatch::daemon
