#include "daemon/latency_metrics.h"

#include <cmath>

namespace perfwatch::daemon {
namespace {

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }
double count(std::uint64_t n) { return static_cast<double>(n); }

}  // namespace

void LatencyMetrics::window_closed(const std::vector<MeteredOperation>& configured, const profile::WindowProfile& window,
                                   std::size_t probe_links) {
  std::map<std::pair<std::string, std::string>, const profile::LatencyHistogram*> measured;
  for (const profile::OperationWindow& op : window.operations)
    if (op.target_index < window.targets.size())
      measured[{window.targets[op.target_index].name, op.name}] = &op.histogram;

  std::lock_guard lock(mutex_);
  std::map<std::pair<std::string, std::string>, Operation> kept;
  for (const MeteredOperation& m : configured) {
    const auto key = std::make_pair(m.target, m.name);
    auto node = operations_.extract(key);
    Operation op = node.empty() ? Operation{} : std::move(node.mapped());
    op.tier = m.tier;
    op.threshold_ns = m.threshold_ns;
    if (auto it = measured.find(key); it != measured.end()) {
      const profile::LatencyHistogram& h = *it->second;
      op.count += h.count;
      op.sum_ns += h.sum_ns;
      op.slow += h.slow;
      op.recent.emplace_back(window.end, h);
    }
    while (!op.recent.empty() && op.recent.front().first <= window.end - span_) op.recent.pop_front();
    op.merged = {};
    for (const auto& [end, h] : op.recent) profile::merge(op.merged, h);
    kept.emplace(key, std::move(op));
  }
  operations_ = std::move(kept);

  totals_ += window.latency;
  probe_links_ = probe_links;
}

void LatencyMetrics::collect(dashboard::MetricsWriter& out) const {
  using Type = dashboard::MetricsWriter::Type;
  std::lock_guard lock(mutex_);
  if (!operations_.empty()) {
    const std::string span = std::to_string(span_.count()) + " s";
    out.family("perfwatch_operation_latency_seconds", Type::summary,
               "Call durations per operation: quantiles over the windows closed in the last " + span +
                   " (NaN without calls), count and sum since perfwatchd started");
    for (const auto& [key, op] : operations_) {
      const dashboard::Labels labels{{"target", key.first}, {"operation", key.second}};
      for (const auto& [q, text] : {std::pair{0.5, "0.5"}, {0.95, "0.95"}, {0.99, "0.99"}}) {
        dashboard::Labels with_quantile = labels;
        with_quantile.emplace_back("quantile", text);
        out.sample(op.merged.count ? seconds(profile::percentile(op.merged, q)) : std::nan(""), with_quantile);
      }
      out.sample(seconds(op.sum_ns), labels, "_sum").sample(count(op.count), labels, "_count");
    }
    out.family("perfwatch_operation_latency_max_seconds", Type::gauge,
               "The slowest call per operation in the windows closed in the last " + span + " (NaN without calls)");
    for (const auto& [key, op] : operations_)
      out.sample(op.merged.count ? seconds(op.merged.max_ns) : std::nan(""),
                 {{"target", key.first}, {"operation", key.second}});
    out.family("perfwatch_operation_slow_calls_total", Type::counter,
               "Calls slower than their operation's threshold since perfwatchd started");
    for (const auto& [key, op] : operations_)
      out.sample(count(op.slow), {{"target", key.first}, {"operation", key.second}});
    out.family("perfwatch_operation_threshold_seconds", Type::gauge,
               "Each operation's latency threshold: its tier's (T1..T5), or its own (tier=\"own\")");
    for (const auto& [key, op] : operations_)
      out.sample(seconds(op.threshold_ns),
                 {{"target", key.first},
                  {"operation", key.second},
                  {"tier", op.tier == profile::Tier::none ? "own" : std::string(profile::to_string(op.tier))}});
  }

  const profile::LatencyStats& l = totals_;
  out.counter("perfwatch_latency_probe_calls_total", "Calls measured by the latency probes (uprobes, USDT, syscalls)",
              count(l.probe_calls));
  out.family("perfwatch_latency_probe_lost_total", Type::counter, "Calls the latency probes could not measure, by reason")
      .sample(count(l.lost_no_entry), {{"reason", "no_entry"}})
      .sample(count(l.lost_unwound), {{"reason", "unwound"}})
      .sample(count(l.lost_map_full), {{"reason", "map_full"}});
  out.gauge("perfwatch_latency_probe_links", "Probe links attached (uprobes and USDT per process, syscall tracepoints)",
            count(probe_links_));
  out.counter("perfwatch_statsd_packets_received_total", "Datagrams the StatsD listener received", count(l.statsd_packets));
  out.counter("perfwatch_statsd_timings_recorded_total", "StatsD timer values recorded into an operation",
              count(l.statsd_timings));
  out.counter("perfwatch_statsd_unknown_total", "Well-formed StatsD metrics no operation asked for (counted, not stored)",
              count(l.statsd_unknown));
  out.counter("perfwatch_statsd_ignored_total", "Well-formed StatsD metrics of configured names but not timers",
              count(l.statsd_ignored));
  out.counter("perfwatch_statsd_malformed_total", "Malformed StatsD lines (the rest of their datagram is read)",
              count(l.statsd_malformed));
  out.counter("perfwatch_statsd_oversized_total", "StatsD datagrams longer than statsd.max_packet, dropped whole",
              count(l.statsd_oversized));
}

}  // namespace perfwatch::daemon
