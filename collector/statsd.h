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
  double rate = 1;        // from |@rate, in [statsd_min_rate, 1]
};

// Bounds of what a line may say; past them it is malformed (counted, not recorded). A timer stands for
// 1/rate calls of value ms each, summed in nanoseconds: these keep every window's sums within the signed
// 64-bit integers storage keeps, with room for every timer of a day.
inline constexpr double statsd_min_rate = 1e-6;             // a sampled line stands for at most a million
inline constexpr double statsd_max_timer_ms = 86'400'000;   // a day
inline constexpr double statsd_max_counter = 9007199254740992.0;  // 2^53: counts stay exact in a double

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

// What the listener does with the datagrams it reads, without the socket: the timers of the operations it
// is given go into their histograms, the counters into their sums, everything else is counted. A line whose
// calls would carry an operation's count or sum, or a counter's sum, past what storage keeps is refused
// and counted as malformed. Not thread-safe: the listener holds its lock around it.
class StatsdRecorder {
 public:
  // A reloaded config: the open window's timings of operations that stay are kept under their new index.
  void set_operations(std::vector<StatsdOperation> operations);
  // Likewise for counters: the open window's sums of counters that stay are kept.
  void set_counters(std::vector<StatsdCounter> counters);
  void handle(std::string_view datagram);
  void oversized();  // a datagram longer than the listener reads
  // Closes the window: what was recorded since the last drain.
  StatsdDrain drain();

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

  bool time(Operation& op, const StatsdMetric& metric);
  void count(const StatsdMetric& metric);  // a metric no operation times: an application cache's counter?

  std::unordered_map<std::string, Operation, Hash, std::equal_to<>> operations_;
  std::unordered_map<std::string, Counter, Hash, std::equal_to<>> counters_;
  profile::LatencyStats stats_;
  std::uint64_t counter_lines_ = 0;
};

class StatsdListener {
 public:
  // Binds and starts the thread; fails when the address cannot be bound.
  static Result<std::unique_ptr<StatsdListener>> start(const StatsdOptions& options,
                                                       std::vector<StatsdOperation> operations);
  ~StatsdListener();
  StatsdListener(const StatsdListener&) = delete;
  StatsdListener& operator=(const StatsdListener&) = delete;

  // As StatsdRecorder's, under the listener's lock.
  void set_operations(std::vector<StatsdOperation> operations);
  void set_counters(std::vector<StatsdCounter> counters);
  StatsdDrain drain();
  std::uint16_t port() const { return port_; }

 private:
  StatsdListener() = default;
  void run();

  UniqueFd socket_;
  UniqueFd stop_;  // eventfd
  std::uint16_t port_ = 0;
  std::size_t max_packet_ = 0;
  std::mutex mutex_;  // recorder_; held per batch of datagrams
  StatsdRecorder recorder_;
  std::thread thread_;
};

}  // namespace perfwatch::collector
