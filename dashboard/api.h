#pragma once
// The dashboard's JSON API, exports and /metrics as routes on a Router. Everything reads through
// storage::Query (the CLI's layer) from a QueryPool.
//
//   GET /healthz                                     liveness (no token)
//   GET /metrics                                     Prometheus text: every MetricsSource
//   GET /api/v1/info                                 host, version, sampling frequency, tier thresholds
//   GET /api/v1/targets                   RANGE      targets with data in range, each with the state of its
//                                                    operations per tier (T1..T5, "own" for own thresholds),
//                                                    and each host's probe families as of its newest window
//                                                    (hosts: [{host, window_end, probes: [{family, state,
//                                                    detail}]}])
//   GET /api/v1/targets/{t}/profile       RANGE      flame-graph tree
//   GET /api/v1/targets/{t}/diff          RANGE BASE differential tree (BASE: base_from, base_to)
//   GET /api/v1/targets/{t}/pprof         RANGE      gzip-compressed profile.proto
//   GET /api/v1/targets/{t}/folded        RANGE      folded stacks
//   GET /api/v1/targets/{t}/speedscope    RANGE      speedscope JSON
//   GET /api/v1/targets/{t}/latency       RANGE      per operation: percentiles merged over the range, verdict,
//                                                    and a series (p50/p95/p99/max, calls, slow, threshold);
//                                                    not_measured says why nothing measures an operation
//       op=NAME: that operation only; step=auto|window|5m|1h: a series point per window or per rollup
//       bucket (auto: per window while that gives at most 1500 points, else the finer bucket that does)
//   GET /api/v1/targets/{t}/deploys       RANGE      deploy markers, oldest first
//   GET /api/v1/targets/{t}/caches        RANGE      hit rates of the target's caches (page cache, LLC,
//                                                    application caches) over the range and per window,
//                                                    and what measured the page cache and the LLC
//   GET /api/v1/alerts                    RANGE      alerts active now or that changed state in range,
//                                                    with their state history in range; target=NAME,
//                                                    state=inactive|pending|firing filter them
// RANGE: from=TIME&to=TIME (to defaults to now) or since=DURATION (default 1h); TIME is RFC 3339 UTC
// or Unix seconds. host=NAME selects a host's data (default: this daemon's host; "*" merges all).
// Trees take min_share=FRACTION (default 0.0001): smaller frames are left out; 0 keeps all.
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/profile.h"
#include "dashboard/metrics.h"
#include "dashboard/query_pool.h"
#include "dashboard/router.h"
#include "dashboard/tree_cache.h"

namespace perfwatch::dashboard {

struct ApiOptions {
  std::string host;                 // default for ?host=
  std::string version;
  std::uint32_t frequency_hz = 99;  // pprof's sampling period
  std::array<std::uint64_t, 5> tiers_ns{};  // T1..T5 thresholds, for grading
  Duration window = std::chrono::seconds(10);  // the sampling window, for the latency series' step
  std::function<profile::TimePoint()> now = [] { return profile::Clock::now(); };
  std::size_t cache_bytes = 64 << 20;  // computed trees kept for repeated requests (tree_cache.h)
};

class Api {
 public:
  // `metrics` are collected on each scrape; they and `pool` must outlive the Api.
  Api(QueryPool& pool, ApiOptions options, std::vector<const MetricsSource*> metrics);
  ~Api();
  // Registers every route; the Api must outlive the router.
  void install(Router& router) const;

 private:
  enum class Export { pprof, folded, speedscope };
  struct Scope {
    std::string host;  // "" = every host
    storage::TimeRange range;
  };

  Result<Scope> scope(const Request& request) const;
  // The target's profile over the request's scope (parameters already checked by the caller), or the
  // error response (400, 503) when there is none.
  std::optional<Response> load_profile(const Request& request, Scope& scope, profile::Profile& out) const;
  Result<storage::TimeRange> range(const Request& request, const std::string& prefix, bool required) const;
  Response targets(const Request& request) const;
  Response profile(const Request& request) const;
  Response diff(const Request& request) const;
  Response export_profile(const Request& request, Export format) const;
  Response latency(const Request& request) const;
  Response alerts(const Request& request) const;
  // A target's document over RANGE (from/to/since/host): `read` builds it on a pooled query; the
  // range, target and host are added to it.
  using TargetReader = std::function<Result<nlohmann::json>(storage::Query&, const Scope&, const std::string& target)>;
  Response target_document(const Request& request, const TargetReader& read) const;
  Response deploys(const Request& request) const;
  Response caches(const Request& request) const;
  Response metrics(const Request& request) const;
  Response info(const Request& request) const;

  QueryPool& pool_;
  ApiOptions options_;
  std::vector<const MetricsSource*> metrics_;
  std::unique_ptr<TreeCache> cache_;
};

}  // namespace perfwatch::dashboard
