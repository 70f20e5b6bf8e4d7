#pragma once
// What the configuration's targets measure besides their CPU stacks: the latency and cache probes and
// what the StatsD listener counts for them, with the state of each of their probe families. Built whole
// from a config; the daemon puts a new set in place of the running one only once it is built, and only
// when it would not stop a family the running one measures, so that a reload never tears down working
// probes before their replacements exist.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collector/cache_probes.h"
#include "collector/latency_probes.h"
#include "collector/statsd.h"
#include "common/probe_state.h"
#include "common/profile.h"
#include "config/config.h"
#include "daemon/latency_metrics.h"

namespace perfwatch::daemon {

class ProbeSet {
 public:
  // watched_map_fd < 0: there is no BPF watched map, for `bpf_unavailable` (the reason); the BPF
  // families the config needs then fail with it and StatsD alone measures. Problems are logged as
  // warnings when `first` (start-up), at debug level on reload (the log said it at start-up).
  static std::unique_ptr<ProbeSet> build(const config::Config& cfg, int watched_map_fd,
                                         const std::string& bpf_unavailable, bool first);
  ProbeSet(const ProbeSet&) = delete;
  ProbeSet& operator=(const ProbeSet&) = delete;

  // The registry's decisions about a watched process, for the per-process probes.
  void watch(std::int32_t pid, std::uint32_t target);
  void unwatch(std::int32_t pid);
  // Once per window: attach what newly mapped libraries make attachable.
  void refresh();

  // What the StatsD listener is to record for this set's operations and caches.
  const std::vector<collector::StatsdOperation>& statsd_timers() const { return timers_; }
  const std::vector<collector::StatsdCounter>& statsd_counters() const { return counters_; }
  bool needs_statsd() const { return !timers_.empty() || !counters_.empty(); }

  // The closed window's operations with calls (and the latency counters), from the probes and what
  // the StatsD listener drained; the operations also go to `metrics`.
  void add_latencies(profile::WindowProfile& window, collector::StatsdDrain& statsd, LatencyMetrics& metrics);
  // The closed window's caches with lookups: page cache and LLC per target, then the application caches.
  void add_caches(profile::WindowProfile& window, const collector::StatsdDrain& statsd);

  // The states of this set's families (latency_uprobe, latency_python, latency_syscall, page_cache, llc,
  // usdt_caches) written into `states`; the others are left as they are.
  void report(profile::ProbeStates& states) const;
  // The families `running` measures that this set would not (it failed them): replacing `running` by
  // this set would stop them. Families this set's config no longer asks for (off) are not among them.
  std::vector<profile::ProbeState> would_stop(const ProbeSet& running) const;

 private:
  // Every target's operations and caches in config order: an operation's position is its index
  // everywhere (probe maps, StatsD indices, the window).
  struct OperationRef {
    std::uint32_t target;
    config::Operation op;
    std::uint64_t threshold_ns;
  };
  struct AppCacheRef {
    std::uint32_t target;
    config::AppCache cache;
  };

  ProbeSet() = default;
  void build_latency(const config::Config& cfg, int watched_map_fd, const std::string& bpf_unavailable);
  void build_caches(const config::Config& cfg, int watched_map_fd, const std::string& bpf_unavailable, bool first);

  std::vector<std::string> target_names_;
  std::vector<OperationRef> operations_;
  std::vector<AppCacheRef> app_caches_;
  std::vector<std::size_t> usdt_caches_;  // USDT cache index -> app_caches_ index
  std::vector<collector::StatsdOperation> timers_;
  std::vector<collector::StatsdCounter> counters_;
  std::unique_ptr<collector::LatencyProbes> latency_;
  std::unique_ptr<collector::CacheProbes> caches_;
  profile::ProbeStates states_;  // of this set's families
  // What `perfwatch cache` shows of the page cache and the LLC, "failed: ..." when nothing could load.
  profile::CacheSourceState page_cache_, llc_;
};

}  // namespace perfwatch::daemon
