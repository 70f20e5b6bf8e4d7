#pragma once
// The StatsD listener: timers and counters applications send over UDP (`name:value|ms`, `|@rate` sampling,
// DogStatsD `|#tag:value,...` tags, several metrics per datagram, one per line), recorded into the
// histograms of the operations whose `statsd` source names the metric, in the bucket scheme of the
// BPF probes; counters (`name:1|c`) are summed for the application caches that name them. One thread, datagrams read in batches (recvmmsg); parsing allocates nothing.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "collector/files.h"
#include "common/latency.h"
#include "common/profile.h"
#include "common/result.h"

namespace perfwatch::collector {

struct StatsdMetric {
  std::string_view name;
  double value = 0;
  std::string_view type;  // ms, c, g, s, h, d
  double rate = 1;        // from |@rate, in (0, 1]
};

// Calls on_metric for every well-formed line of the datagram; returns how many lines were malformed
// (empty lines are not lines). Tags (|#...) are checked and ignored.
std::size_t parse_statsd_datagram(std::string_view datagram, const std::function<void(const StatsdMetric&)>& on_metric);

struct StatsdOperation {
  std::size_t index = 0;  // the operation's index in the running config
  std::string metric;
  std::uint64_t threshold_ns = 0;
};

// A counter summed per window (an application cache's hits or misses).
struct StatsdCounter {
  std::size_t index = 0;  // the caller's numbering
  std::string metric;
};

struct StatsdOptions {
  std::string listen = "127.0.0.1:8125";  // HOST:PORT; port 0 picks a free one (tests)
  std::uint64_t receive_buffer_bytes = 8ull << 20;
  std::uint64_t max_packet_bytes = 8192;
};

struct StatsdDrain {
  std::vector<std::pair<std::size_t, profile::LatencyHistogram>> histograms;  // by operation index
  profile::LatencyStats stats;  // the statsd counters only
  std::vector<std::pair<std::size_t, std::uint64_t>> counters;  // by counter index: sums, sampling scaled up
  std::uint64_t counter_lines = 0;  // counter lines recorded
};

class StatsdListener {
 public:
  // Binds and starts the thread; fails when the address cannot be bound.
  static Result<std::unique_ptr<StatsdListener>> start(const StatsdOptions& options,
                                                       std::vector<StatsdOperation> operations);
  ~StatsdListener();
  StatsdListener(const StatsdListener&) = delete;
  StatsdListener& operator=(const StatsdListener&) = delete;

  // A reloaded config: the open window's timings of operations that stay are kept under their new index.
  void set_operations(std::vector<StatsdOperation> operations);
  // Likewise for counters: the open window's sums of counters that stay are kept.
  void set_counters(std::vector<StatsdCounter> counters);
  // Closes the window: what was recorded since the last drain.
  StatsdDrain drain();
  std::uint16_t port() const { return port_; }

 private:
  struct Operation {
    std::size_t index;
    std::uint64_t threshold_ns;
    profile::DenseHistogram histogram;
    double carry = 0;  // fractional calls of sampled timers, so counts add up over a window
  };
  struct Counter {
    std::size_t index;
    double sum = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  StatsdListener() = default;
  void run();
  void handle(std::string_view datagram);
  void count(const StatsdMetric& metric);  // a metric no operation times: an application cache's counter?

  UniqueFd socket_;
  UniqueFd stop_;  // eventfd
  std::uint16_t port_ = 0;
  std::size_t max_packet_ = 0;
  std::mutex mutex_;  // operations_, counters_ and the stats; held per batch of datagrams
  std::unordered_map<std::string, Operation, Hash, std::equal_to<>> operations_;
  std::unordered_map<std::string, Counter, Hash, std::equal_to<>> counters_;
  profile::LatencyStats stats_;
  std::uint64_t counter_lines_ = 0;
  std::thread thread_;
};

}  // namespace perfwatch::collector
