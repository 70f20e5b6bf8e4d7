#pragma once
// The alerting rules as pure functions from what the sources read to verdicts (Rounds), which the
// evaluator turns into alert states. Labels, annotations and links are decided here.
//
//   tier                LatencyTierViolation: an operation's configured percentile (p95) of a window above
//                       its tier's threshold; fires after `for` (30s) of such windows, resolves after `for`
//                       of windows below it (or without calls).
//   burn_rate           LatencyBurnRate: the fraction of calls slower than the tier, divided by the error
//                       budget (1 - objective), reaches `factor` over both the long and the short window
//                       of a pair (SRE workbook defaults: 1h/5m x14.4 and 6h/30m x6 page, 3d/6h x1 ticket).
//   cache_floor         CacheHitRateLow: a cache's hit ratio in a window below its floor for `for`.
//   latency_regression  LatencyRegression: an operation's per-window statistic rose (regression.h).
//   cpu_regression      CpuRegression: functions' share of a target's CPU samples rose (regression.h).
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "alerts/model.h"
#include "alerts/regression.h"
#include "alerts/sources.h"
#include "config/config.h"

namespace perfwatch::alerts {

struct RuleContext {
  std::string host;
  std::string external_url;  // the dashboard, for links
};

struct Observation {
  Labels labels;
  Annotations annotations;  // summary, description, dashboard (a link), and per rule more
  double value = 0;
  bool condition = false;
};

// One rule's verdicts over one span of time. Alerts of the rule that a round does not mention are
// clear over its span: an operation without calls does not violate its tier.
struct Round {
  std::string rule;
  TimePoint start;
  TimePoint end;
  Hold hold;
  std::vector<Observation> observations;
};

// One round per window (by start), in order.
std::vector<Round> tier_rounds(std::span<const LatencyWindow> windows, const config::TierRule& rule,
                               const RuleContext& context);
Round burn_rate_round(std::span<const LatencyTotals> totals, const config::BurnRateRule& rule,
                      const RuleContext& context, TimePoint at);
// The spans burn_rate_round expects totals for: each pair's long then short window.
std::vector<Duration> burn_rate_spans(const config::BurnRateRule& rule);
std::vector<Round> cache_rounds(std::span<const CacheWindow> windows, const config::CacheRule& rule,
                                const RuleContext& context);

// An operation's windows as points of the configured statistic, leaving out windows with few calls.
std::vector<Point> latency_points(std::span<const LatencyWindow> windows, config::LatencyStatistic statistic,
                                  std::uint64_t min_calls);

// The regression rules evaluate every target and operation in one round each.
Observation latency_regression_observation(const LatencyWindow& operation, const std::optional<Shift>& shift,
                                           const std::optional<Deploy>& deploy, config::LatencyStatistic statistic,
                                           const RuleContext& context);
Observation cpu_regression_observation(const std::string& target, std::span<const FunctionRegression> regressions,
                                       const FunctionTable& functions, const std::optional<Deploy>& deploy,
                                       const RuleContext& context);

// Rule names, as stored with each alert.
inline constexpr const char* tier_rule = "tier";
inline constexpr const char* burn_rate_rule = "burn_rate";
inline constexpr const char* cache_rule = "cache_floor";
inline constexpr const char* latency_regression_rule = "latency_regression";
inline constexpr const char* cpu_regression_rule = "cpu_regression";

}  // namespace perfwatch::alerts
