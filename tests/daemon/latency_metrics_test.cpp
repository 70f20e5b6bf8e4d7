// /metrics for operation latencies: what perfwatchd exports from its closed windows.
#include "daemon/latency_metrics.h"

#include <gtest/gtest.h>

#include <sstream>

namespace perfwatch::daemon {
namespace {

using namespace std::chrono_literals;

profile::TimePoint at(std::int64_t s) { return profile::TimePoint(std::chrono::seconds(s)); }

profile::LatencyHistogram calls(std::initializer_list<std::uint64_t> ms, std::uint64_t threshold_ms) {
  profile::DenseHistogram h;
  for (std::uint64_t v : ms) EXPECT_TRUE(h.record(v * 1'000'000, 1, threshold_ms * 1'000'000));
  return h.take();
}

// A 10 s window ending at `end` where api's "lookup" took `lookup_ms`.
profile::WindowProfile window(std::int64_t end, std::initializer_list<std::uint64_t> lookup_ms) {
  profile::WindowProfile w;
  w.start = at(end - 10);
  w.end = at(end);
  w.targets = {{"api", {}, 0}, {"worker", {}, 0}};
  if (lookup_ms.size())
    w.operations.push_back({0, "lookup", profile::OperationSource::uprobe, "/bin/app:lookup", profile::Tier::t1,
                            100'000'000, calls(lookup_ms, 100)});
  w.latency = {5, 1, 2, 3, 40, 30, 4, 1, 2, 1};
  return w;
}

const std::vector<MeteredOperation> configured = {{"api", "lookup", profile::Tier::t1, 100'000'000},
                                                  {"worker", "render", profile::Tier::none, 20'000'000}};

// The value of the sample whose line starts with `prefix` followed by a space; NaN as a string.
std::string value(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix + " ", 0) == 0) return line.substr(prefix.size() + 1);
  return "absent";
}

std::string scrape(const LatencyMetrics& m) {
  dashboard::MetricsWriter out;
  m.collect(out);
  return out.text();
}

TEST(LatencyMetrics, SummarizesEachConfiguredOperation) {
  LatencyMetrics m(30s);
  m.window_closed(configured, window(100, {10, 20, 30, 40}), 3);
  m.window_closed(configured, window(110, {250}), 3);
  const std::string text = scrape(m);
  EXPECT_NE(text.find("# TYPE perfwatch_operation_latency_seconds summary\n"), std::string::npos) << text;
  const std::string lookup = "{target=\"api\",operation=\"lookup\"";
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds" + lookup + ",quantile=\"0.99\"}"), "0.25");
  const double p50 = std::stod(value(text, "perfwatch_operation_latency_seconds" + lookup + ",quantile=\"0.5\"}"));
  EXPECT_NEAR(p50, 0.030, 0.030 * 0.032) << "within the buckets' 3.2%";
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds_count" + lookup + "}"), "5");
  EXPECT_EQ(std::stod(value(text, "perfwatch_operation_latency_seconds_sum" + lookup + "}")), 0.35);
  EXPECT_EQ(value(text, "perfwatch_operation_latency_max_seconds" + lookup + "}"), "0.25");
  EXPECT_EQ(value(text, "perfwatch_operation_slow_calls_total" + lookup + "}"), "1");
  EXPECT_EQ(value(text, "perfwatch_operation_threshold_seconds" + lookup + ",tier=\"T1\"}"), "0.10000000000000001");
  // A configured operation without calls yet: no quantiles, zero counts, its own threshold.
  const std::string render = "{target=\"worker\",operation=\"render\"";
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds" + render + ",quantile=\"0.5\"}"), "NaN");
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds_count" + render + "}"), "0");
  EXPECT_EQ(value(text, "perfwatch_operation_threshold_seconds" + render + ",tier=\"own\"}"), "0.02");
  // Collection health, summed over the windows.
  EXPECT_EQ(value(text, "perfwatch_latency_probe_calls_total"), "10");
  EXPECT_EQ(value(text, "perfwatch_latency_probe_lost_total{reason=\"unwound\"}"), "4");
  EXPECT_EQ(value(text, "perfwatch_latency_probe_links"), "3");
  EXPECT_EQ(value(text, "perfwatch_statsd_packets_received_total"), "80");
  EXPECT_EQ(value(text, "perfwatch_statsd_unknown_total"), "8");
  EXPECT_EQ(value(text, "perfwatch_statsd_malformed_total"), "4");
  EXPECT_EQ(value(text, "perfwatch_statsd_oversized_total"), "2");
}

TEST(LatencyMetrics, QuantilesCoverTheLastSpanCountsEverything) {
  LatencyMetrics m(30s);
  m.window_closed(configured, window(100, {900}), 0);
  m.window_closed(configured, window(110, {10}), 0);
  const std::string lookup = "{target=\"api\",operation=\"lookup\"";
  EXPECT_EQ(value(scrape(m), "perfwatch_operation_latency_seconds" + lookup + ",quantile=\"0.99\"}"), "0.90000000000000002");
  // 40 s later the 900 ms call has left the span; the count keeps it.
  m.window_closed(configured, window(140, {20}), 0);
  std::string text = scrape(m);
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds" + lookup + ",quantile=\"0.99\"}"), "0.02");
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds_count" + lookup + "}"), "3");
  // A span without calls: no quantiles until the next one.
  m.window_closed(configured, window(180, {}), 0);
  text = scrape(m);
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds" + lookup + ",quantile=\"0.99\"}"), "NaN");
  EXPECT_EQ(value(text, "perfwatch_operation_latency_max_seconds" + lookup + "}"), "NaN");
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds_count" + lookup + "}"), "3");
}

TEST(LatencyMetrics, OperationsLeaveWithTheConfig) {
  LatencyMetrics m;
  m.window_closed(configured, window(100, {10}), 0);
  // A reload drops "render" and moves "lookup" to T2.
  m.window_closed({{"api", "lookup", profile::Tier::t2, 500'000'000}}, window(110, {20}), 0);
  const std::string text = scrape(m);
  EXPECT_EQ(text.find("render"), std::string::npos) << text;
  EXPECT_EQ(value(text, "perfwatch_operation_threshold_seconds{target=\"api\",operation=\"lookup\",tier=\"T2\"}"), "0.5");
  EXPECT_EQ(value(text, "perfwatch_operation_latency_seconds_count{target=\"api\",operation=\"lookup\"}"), "2")
      << "an operation that stays keeps its counts";
  // No operations at all: the health families alone.
  LatencyMetrics none;
  none.window_closed({}, window(100, {}), 0);
  EXPECT_EQ(scrape(none).find("perfwatch_operation_"), std::string::npos);
  EXPECT_NE(scrape(none).find("perfwatch_statsd_packets_received_total 40\n"), std::string::npos);
}

}  // namespace
}  // namespace perfwatch::daemon
