#include "daemon/latency_json.h"

#include "daemon/cli_time.h"

namespace perfwatch::daemon {

std::optional<std::string> not_measured(std::string_view source, const std::vector<storage::HostProbes>& hosts) {
  profile::OperationSource parsed{};
  if (!profile::parse_operation_source(source, parsed)) return std::nullopt;
  std::optional<std::string> reason;
  for (const storage::HostProbes& h : hosts) {
    std::optional<std::string> why = profile::not_measured(parsed, h.probes);
    if (!why) return std::nullopt;
    if (!reason) reason = hosts.size() > 1 ? h.host + ": " + *why : *why;
  }
  return reason;
}

nlohmann::json operation_json(const storage::OperationLatency& op, std::span<const std::uint64_t, 5> tiers_ns,
                              const std::vector<storage::HostProbes>& probes) {
  const profile::LatencyHistogram& h = op.histogram;
  nlohmann::json item = {
      {"name", op.name},
      {"source", op.source},
      {"spec", op.spec},
      {"tier", op.tier == profile::Tier::none ? nlohmann::json(nullptr) : nlohmann::json(profile::to_string(op.tier))},
      {"threshold_ns", op.threshold_ns},
      {"calls", h.count},
      {"windows", op.windows},
      {"sum_ns", h.sum_ns},
      {"p50_ns", profile::percentile(h, 0.50)},
      {"p95_ns", profile::percentile(h, 0.95)},
      {"p99_ns", profile::percentile(h, 0.99)},
      {"max_ns", h.max_ns},
      {"slow", h.slow},
      {"slow_fraction", h.count ? static_cast<double>(h.slow) / static_cast<double>(h.count) : 0.0}};
  item["verdict"] = verdict_name(op, tiers_ns);
  const std::optional<std::string> why_not = not_measured(op.source, probes);
  item["not_measured"] = why_not ? nlohmann::json(*why_not) : nlohmann::json(nullptr);
  if (op.windows == 0) {
    item["grade"] = nullptr;
    item["last_window_end"] = op.last_window_end ? nlohmann::json(format_time(*op.last_window_end)) : nullptr;
    return item;
  }
  item["grade"] = profile::grade_text(profile::judge(h, op.threshold_ns, tiers_ns));
  return item;
}

std::string_view verdict_name(const storage::OperationLatency& op, std::span<const std::uint64_t, 5> tiers_ns) {
  if (op.windows == 0) return "no_data";
  return profile::judge(op.histogram, op.threshold_ns, tiers_ns).ok ? "ok" : "slow";
}

nlohmann::json operation_buckets_json(const storage::OperationLatency& op) { return op.histogram.buckets; }

nlohmann::json latency_health_json(const profile::LatencyStats& l) {
  return {{"probe_calls", l.probe_calls},         {"lost_no_entry", l.lost_no_entry},
          {"lost_unwound", l.lost_unwound},       {"lost_map_full", l.lost_map_full},
          {"statsd_packets", l.statsd_packets},   {"statsd_timings", l.statsd_timings},
          {"statsd_unknown", l.statsd_unknown},   {"statsd_ignored", l.statsd_ignored},
          {"statsd_malformed", l.statsd_malformed}, {"statsd_oversized", l.statsd_oversized}};
}

}  // namespace perfwatch::daemon
