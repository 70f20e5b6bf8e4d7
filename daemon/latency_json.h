#pragma once
// Operation latencies as JSON, the same for `perfwatch latency --format json` and the dashboard API.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/profile.h"
#include "storage/query.h"

namespace perfwatch::daemon {

// Why operations of this source have no calls: "not measured: latency_python failed: ..." when its probe
// family measures on none of the hosts (each host's newest window, Query::probe_states); nullopt when
// one measures, or nothing is known.
std::optional<std::string> not_measured(std::string_view source, const std::vector<storage::HostProbes>& hosts);

// The operation's merged figures and its verdict against its threshold, graded by `tiers_ns` (T1..T5):
// "ok" or "slow" with the tier p99 is in, or "no_data" (no calls in range, grade null) with the end of
// its newest stored window; not_measured says why nothing measures it (null when something does), given
// the hosts' probe states. Buckets are left out (operation_buckets_json).
nlohmann::json operation_json(const storage::OperationLatency& op, std::span<const std::uint64_t, 5> tiers_ns,
                              const std::vector<storage::HostProbes>& probes);
// "ok", "slow" or "no_data", as operation_json says.
std::string_view verdict_name(const storage::OperationLatency& op, std::span<const std::uint64_t, 5> tiers_ns);
// The merged histogram's non-empty buckets as [index, count] pairs.
nlohmann::json operation_buckets_json(const storage::OperationLatency& op);
// Latency collection health: probe calls and losses, the StatsD listener's counts.
nlohmann::json latency_health_json(const profile::LatencyStats& stats);

}  // namespace perfwatch::daemon
