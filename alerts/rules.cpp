#include "alerts/rules.h"

#include <cstdio>

#include "alerts/links.h"
#include "common/time_text.h"

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;
using profile::format_ns;

std::string printf_string(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

std::string percent(double fraction) { return printf_string("%.1f%%", fraction * 100); }

std::string signed_percent(double fraction) { return printf_string("%+.0f%%", fraction * 100); }

std::string_view statistic_name(config::LatencyStatistic s) {
  switch (s) {
    case config::LatencyStatistic::p50: return "p50";
    case config::LatencyStatistic::p95: return "p95";
    case config::LatencyStatistic::p99: return "p99";
    case config::LatencyStatistic::max: return "max";
  }
  return "p95";
}

std::uint64_t statistic_of(const LatencyWindow& w, config::LatencyStatistic s) {
  switch (s) {
    case config::LatencyStatistic::p50: return w.p50_ns;
    case config::LatencyStatistic::p95: return w.p95_ns;
    case config::LatencyStatistic::p99: return w.p99_ns;
    case config::LatencyStatistic::max: return w.max_ns;
  }
  return w.p95_ns;
}

std::string tier_label(const std::string& tier) { return tier.empty() ? "threshold" : tier; }

// "its T2 threshold of 500ms" or "its threshold of 5ms".
std::string threshold_text(const std::string& tier, std::uint64_t threshold_ns) {
  return "its " + (tier.empty() ? std::string() : tier + " ") + "threshold of " + format_ns(static_cast<double>(threshold_ns));
}

Labels operation_labels(const char* alertname, const RuleContext& c, const std::string& target,
                        const std::string& operation) {
  return {{"alertname", alertname}, {"host", c.host}, {"target", target}, {"operation", operation}};
}

// The windows of one start time together, in order of start.
template <typename W, typename F>
std::vector<Round> per_window(std::span<const W> windows, const char* rule, Hold hold, F&& observe) {
  std::vector<Round> rounds;
  for (const W& w : windows) {
    if (rounds.empty() || rounds.back().start != w.start) {
      rounds.push_back({rule, w.start, w.end, hold, {}});
      rounds.back().hold.max_gap = std::chrono::duration_cast<Duration>(w.end - w.start);
    }
    rounds.back().end = std::max(rounds.back().end, w.end);
    if (std::optional<Observation> o = observe(w)) rounds.back().observations.push_back(std::move(*o));
  }
  return rounds;
}

std::string deploy_text(const std::optional<Deploy>& deploy) {
  return deploy ? ", following the deploy at " + format_time(deploy->at) + " (" + deploy->summary + ")" : "";
}

}  // namespace

std::vector<Round> tier_rounds(std::span<const LatencyWindow> windows, const config::TierRule& rule,
                               const RuleContext& context) {
  if (!rule.enabled) return {};
  const Hold hold{rule.for_, rule.for_};
  return per_window(windows, tier_rule, hold, [&](const LatencyWindow& w) -> std::optional<Observation> {
    const std::uint64_t value = statistic_of(w, rule.percentile);
    Observation o;
    o.labels = operation_labels("LatencyTierViolation", context, w.target, w.operation);
    o.labels["tier"] = tier_label(w.tier);
    o.labels["severity"] = "warning";
    o.value = static_cast<double>(value) / 1e9;
    o.condition = w.count > 0 && value > w.threshold_ns;
    const std::string stat(statistic_name(rule.percentile));
    o.annotations["summary"] = stat + " latency of " + w.target + "/" + w.operation + " is " +
                               format_ns(static_cast<double>(value)) + (o.condition ? ", above " : ", within ") +
                               threshold_text(w.tier, w.threshold_ns);
    o.annotations["description"] =
        printf_string("%llu calls in the window, %llu slower than the threshold; p50 %s, p95 %s, p99 %s, max %s. "
                      "The alert fires after %s above the threshold and resolves after %s below it.",
                      static_cast<unsigned long long>(w.count), static_cast<unsigned long long>(w.slow),
                      format_ns(static_cast<double>(w.p50_ns)).c_str(), format_ns(static_cast<double>(w.p95_ns)).c_str(),
                      format_ns(static_cast<double>(w.p99_ns)).c_str(), format_ns(static_cast<double>(w.max_ns)).c_str(),
                      format_duration(rule.for_).c_str(), format_duration(rule.for_).c_str());
    o.annotations["dashboard"] = target_link(context.external_url, context.host, w.target, {w.end - 1h, w.end});
    return o;
  });
}

std::vector<Duration> burn_rate_spans(const config::BurnRateRule& rule) {
  std::vector<Duration> spans;
  for (const config::BurnWindow& w : rule.windows) {
    spans.push_back(w.long_window);
    spans.push_back(w.short_window);
  }
  return spans;
}

Round burn_rate_round(std::span<const LatencyTotals> totals, const config::BurnRateRule& rule,
                      const RuleContext& context, TimePoint at) {
  Round round{burn_rate_rule, at, at, Hold{}, {}};
  if (!rule.enabled) return round;
  const double budget = 1.0 - rule.objective;
  const auto burn = [&](const CallCounts& c) {
    return c.count == 0 ? 0.0 : static_cast<double>(c.slow) / static_cast<double>(c.count) / budget;
  };
  for (const LatencyTotals& op : totals) {
    if (op.spans.size() != 2 * rule.windows.size()) continue;
    for (std::size_t i = 0; i < rule.windows.size(); ++i) {
      const config::BurnWindow& w = rule.windows[i];
      const CallCounts& long_calls = op.spans[2 * i];
      const CallCounts& short_calls = op.spans[2 * i + 1];
      const double long_burn = burn(long_calls), short_burn = burn(short_calls);
      Observation o;
      o.labels = operation_labels("LatencyBurnRate", context, op.target, op.operation);
      o.labels["tier"] = tier_label(op.tier);
      o.labels["severity"] = w.severity;
      o.labels["window"] = format_duration(w.long_window) + "/" + format_duration(w.short_window);
      o.value = long_burn;
      o.condition = long_calls.count >= rule.min_calls && long_burn >= w.factor && short_burn >= w.factor;
      o.annotations["summary"] =
          op.target + "/" + op.operation + " burns its latency error budget " + printf_string("%.1fx", long_burn) +
          " over " + format_duration(w.long_window) + " and " + printf_string("%.1fx", short_burn) + " over " +
          format_duration(w.short_window) + " (alert at " + printf_string("%gx", w.factor) + ")";
      o.annotations["description"] = printf_string(
          "%s of %llu calls in the last %s were slower than %s; the objective is %s within it.",
          percent(long_calls.count ? static_cast<double>(long_calls.slow) / static_cast<double>(long_calls.count) : 0)
              .c_str(),
          static_cast<unsigned long long>(long_calls.count), format_duration(w.long_window).c_str(),
          threshold_text(op.tier, op.threshold_ns).c_str(), percent(rule.objective).c_str());
      o.annotations["dashboard"] = target_link(context.external_url, context.host, op.target,
                                               {at - std::chrono::duration_cast<profile::Clock::duration>(w.long_window), at});
      round.observations.push_back(std::move(o));
    }
  }
  return round;
}

std::vector<Round> cache_rounds(std::span<const CacheWindow> windows, const config::CacheRule& rule,
                                const RuleContext& context) {
  const Hold hold{rule.for_, rule.for_};
  return per_window(windows, cache_rule, hold, [&](const CacheWindow& w) -> std::optional<Observation> {
    std::optional<double> floor = rule.floor;
    for (const config::CacheFloor& f : rule.floors)
      if ((f.target.empty() || f.target == w.target) && (f.cache.empty() || f.cache == w.cache)) {
        floor = f.floor;
        break;
      }
    if (!floor) return std::nullopt;
    const std::uint64_t lookups = w.hits + w.misses;
    const double ratio = lookups ? static_cast<double>(w.hits) / static_cast<double>(lookups) : 1.0;
    Observation o;
    o.labels = {{"alertname", "CacheHitRateLow"}, {"host", context.host}, {"target", w.target},
                {"cache", w.cache}, {"severity", "warning"}};
    o.value = ratio;
    o.condition = lookups >= rule.min_lookups && ratio < *floor;
    o.annotations["summary"] = "hit ratio of " + w.target + "/" + w.cache + " is " + percent(ratio) +
                               (o.condition ? ", below" : ", at or above") + " its floor of " + percent(*floor);
    o.annotations["description"] = printf_string("%llu hits and %llu misses in the window.",
                                                 static_cast<unsigned long long>(w.hits),
                                                 static_cast<unsigned long long>(w.misses));
    o.annotations["dashboard"] = target_link(context.external_url, context.host, w.target, {w.end - 1h, w.end});
    return o;
  });
}

std::vector<Point> latency_points(std::span<const LatencyWindow> windows, config::LatencyStatistic statistic,
                                  std::uint64_t min_calls) {
  std::vector<Point> points;
  for (const LatencyWindow& w : windows)
    if (w.count >= min_calls) points.push_back({w.start, w.end, static_cast<double>(statistic_of(w, statistic))});
  return points;
}

Observation latency_regression_observation(const LatencyWindow& op, const std::optional<Shift>& shift,
                                           const std::optional<Deploy>& deploy, config::LatencyStatistic statistic,
                                           const RuleContext& context) {
  Observation o;
  o.labels = operation_labels("LatencyRegression", context, op.target, op.operation);
  o.labels["severity"] = "warning";
  o.condition = shift.has_value();
  if (!shift) return o;
  const std::string stat(statistic_name(statistic));
  o.value = shift->relative();
  o.annotations["summary"] = stat + " latency of " + op.target + "/" + op.operation + " rose " +
                             signed_percent(shift->relative()) + " (" + format_ns(shift->before) + " -> " +
                             format_ns(shift->after) + ") at " + format_time(shift->after_from) + deploy_text(deploy);
  o.annotations["description"] = printf_string(
      "Change point found by a split/merge t-test (p = %.2g): %s per window averaged %s from %s to %s and %s since.",
      shift->pvalue, stat.c_str(), format_ns(shift->before).c_str(), format_time(shift->before_from).c_str(),
      format_time(shift->before_to).c_str(), format_ns(shift->after).c_str());
  o.annotations["before"] = format_time(shift->before_from) + "/" + format_time(shift->before_to);
  o.annotations["after"] = format_time(shift->after_from) + "/" + format_time(shift->after_to);
  if (deploy) o.annotations["deploy"] = format_time(deploy->at) + " " + deploy->summary;
  o.annotations["dashboard"] =
      target_link(context.external_url, context.host, op.target, {shift->before_from, shift->after_to});
  return o;
}

Observation cpu_regression_observation(const std::string& target, std::span<const FunctionRegression> regressions,
                                       const FunctionTable& functions, const std::optional<Deploy>& deploy,
                                       const RuleContext& context) {
  Observation o;
  o.labels = {{"alertname", "CpuRegression"}, {"host", context.host}, {"target", target}, {"severity", "warning"}};
  o.condition = !regressions.empty();
  if (regressions.empty()) return o;
  const FunctionRegression& top = regressions.front();
  const auto share_line = [&](const FunctionRegression& r) {
    const Function& f = functions[r.function];
    return f.name + " (" + f.module + "): self " + percent(r.self_before) + " -> " + percent(r.self_after) +
           ", total " + percent(r.total_before) + " -> " + percent(r.total_after);
  };
  const double top_before = top.kind == ShareKind::self ? top.self_before : top.total_before;
  const double top_after = top.kind == ShareKind::self ? top.self_after : top.total_after;
  o.value = top.shift.relative();
  o.annotations["summary"] = "CPU regression in " + target + ": " + functions[top.function].name + " " +
                             (top.kind == ShareKind::self ? "self" : "total") + " share " + percent(top_before) +
                             " -> " + percent(top_after) + " (" + signed_percent(top.shift.relative()) + ") at " +
                             format_time(top.shift.after_from) + deploy_text(deploy);
  std::string lines;
  for (const FunctionRegression& r : regressions) lines += (lines.empty() ? "" : "\n") + share_line(r);
  o.annotations["functions"] = lines;
  o.annotations["description"] = printf_string(
      "Functions whose share of %s's CPU samples grew most (change point by a split/merge t-test, p = %.2g), "
      "before (%s to %s) and after (since %s):\n",
      target.c_str(), top.shift.pvalue, format_time(top.shift.before_from).c_str(),
      format_time(top.shift.before_to).c_str(), format_time(top.shift.after_from).c_str()) + lines;
  o.annotations["function"] = functions[top.function].name;
  o.annotations["before"] = format_time(top.shift.before_from) + "/" + format_time(top.shift.before_to);
  o.annotations["after"] = format_time(top.shift.after_from) + "/" + format_time(top.shift.after_to);
  if (deploy) o.annotations["deploy"] = format_time(deploy->at) + " " + deploy->summary;
  o.annotations["diff"] = diff_link(context.external_url, context.host, target,
                                    {top.shift.before_from, top.shift.before_to}, {top.shift.after_from, top.shift.after_to});
  o.annotations["dashboard"] = o.annotations["diff"];
  return o;
}

}  // namespace perfwatch::alerts
