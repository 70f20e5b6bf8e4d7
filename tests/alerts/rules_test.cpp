// The rules' verdicts, labels, texts and links; the evaluator's states, history and deduplicated
// notifications; backoff delays.
#include <gtest/gtest.h>

#include "alerts/backoff.h"
#include "alerts/evaluator.h"
#include "alerts/links.h"
#include "alerts/rules.h"

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;

TimePoint at(int seconds) { return TimePoint(std::chrono::seconds(1'800'000'000 + seconds)); }  // 2027-01-15T08:00:00Z

const RuleContext context{"web-01", "http://perfwatch.example.com:7460"};

LatencyWindow window(int start, const std::string& op, std::uint64_t p95_ms, std::uint64_t count = 100) {
  LatencyWindow w;
  w.target = "api";
  w.operation = op;
  w.tier = "T2";
  w.threshold_ns = 500'000'000;
  w.start = at(start);
  w.end = at(start + 10);
  w.count = count;
  w.slow = p95_ms > 500 ? count / 10 : 0;
  w.p50_ns = p95_ms * 500'000;
  w.p95_ns = p95_ms * 1'000'000;
  w.p99_ns = p95_ms * 1'200'000;
  w.max_ns = p95_ms * 2'000'000;
  return w;
}

TEST(Links, FollowTheDashboardsHashRoutes) {
  EXPECT_EQ(target_link("http://h:7460", "web 01", "api", {at(0), at(3600)}),
            "http://h:7460/#/target/api?host=web%2001&from=2027-01-15T08%3A00%3A00Z&to=2027-01-15T09%3A00%3A00Z");
  EXPECT_EQ(diff_link("http://h:7460", "web-01", "api", {at(0), at(600)}, {at(600), at(900)}),
            "http://h:7460/#/target/api?host=web-01&view=diff&base_from=2027-01-15T08%3A00%3A00Z"
            "&base_to=2027-01-15T08%3A10%3A00Z&from=2027-01-15T08%3A10%3A00Z&to=2027-01-15T08%3A15%3A00Z");
}

TEST(TierRule, OneRoundPerWindowWithTheConfiguredPercentile) {
  config::TierRule rule;
  const std::vector<LatencyWindow> windows = {window(0, "lookup", 300), window(0, "load", 800), window(10, "load", 900)};
  const std::vector<Round> rounds = tier_rounds(windows, rule, context);
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_EQ(rounds[0].start, at(0));
  EXPECT_EQ(rounds[0].end, at(10));
  EXPECT_EQ(rounds[0].hold.for_, 30s);
  EXPECT_EQ(rounds[0].hold.clear_for, 30s);
  EXPECT_EQ(rounds[0].hold.max_gap, 10s);
  ASSERT_EQ(rounds[0].observations.size(), 2u);
  EXPECT_FALSE(rounds[0].observations[0].condition);
  const Observation& load = rounds[0].observations[1];
  EXPECT_TRUE(load.condition);
  EXPECT_EQ(load.labels, (Labels{{"alertname", "LatencyTierViolation"}, {"host", "web-01"}, {"target", "api"},
                                 {"operation", "load"}, {"tier", "T2"}, {"severity", "warning"}}));
  EXPECT_EQ(load.annotations.at("summary"), "p95 latency of api/load is 800ms, above its T2 threshold of 500ms");
  EXPECT_DOUBLE_EQ(load.value, 0.8);
  EXPECT_EQ(load.annotations.at("dashboard").rfind("http://perfwatch.example.com:7460/#/target/api?host=web-01", 0), 0u);

  rule.percentile = config::LatencyStatistic::p50;  // 400ms and 450ms: within
  for (const Round& r : tier_rounds(windows, rule, context))
    for (const Observation& o : r.observations) EXPECT_FALSE(o.condition) << o.annotations.at("summary");
}

TEST(BurnRateRule, FiresWhenBothWindowsBurnFastEnough) {
  config::BurnRateRule rule;  // 99%: budget 1%; 1h/5m at 14.4, 6h/30m at 6, 3d/6h at 1
  ASSERT_EQ(burn_rate_spans(rule), (std::vector<Duration>{1h, 5min, 6h, 30min, 72h, 6h}));
  LatencyTotals op{"api", "load", "T2", 500'000'000, {}};
  // 20% slow in the last hour and 5 minutes (burn 20), 4% over 6h/30m (burn 4), 2% over 3d/6h (burn 2).
  op.spans = {{1000, 200}, {100, 20}, {6000, 240}, {500, 20}, {72000, 1440}, {6000, 120}};
  const Round round = burn_rate_round(std::vector<LatencyTotals>{op}, rule, context, at(0));
  ASSERT_EQ(round.observations.size(), 3u);
  EXPECT_TRUE(round.observations[0].condition);
  EXPECT_NEAR(round.observations[0].value, 20, 1e-9);
  EXPECT_EQ(round.observations[0].labels.at("severity"), "page");
  EXPECT_EQ(round.observations[0].labels.at("window"), "1h/5m");
  EXPECT_EQ(round.observations[0].labels.at("alertname"), "LatencyBurnRate");
  EXPECT_FALSE(round.observations[1].condition);
  EXPECT_TRUE(round.observations[2].condition);
  EXPECT_EQ(round.observations[2].labels.at("severity"), "ticket");
  // The short window has recovered: no page.
  op.spans[1] = {100, 0};
  EXPECT_FALSE(burn_rate_round(std::vector<LatencyTotals>{op}, rule, context, at(0)).observations[0].condition);
  // Too few calls to judge.
  op.spans = {{50, 50}, {50, 50}, {50, 50}, {50, 50}, {50, 50}, {50, 50}};
  for (const Observation& o : burn_rate_round(std::vector<LatencyTotals>{op}, rule, context, at(0)).observations)
    EXPECT_FALSE(o.condition);
}

TEST(CacheRule, FloorsPerTargetAndCacheThenTheDefault) {
  config::CacheRule rule;
  rule.floors = {{"api", "page_cache", 0.95}};
  const std::vector<CacheWindow> windows = {{"api", "page_cache", at(0), at(10), 900, 100},
                                            {"api", "lru", at(0), at(10), 10, 990},
                                            {"api", "tiny", at(0), at(10), 1, 9}};
  std::vector<Round> rounds = cache_rounds(windows, rule, context);
  ASSERT_EQ(rounds.size(), 1u);
  ASSERT_EQ(rounds[0].observations.size(), 1u) << "caches without a floor are not judged";
  EXPECT_TRUE(rounds[0].observations[0].condition);
  EXPECT_EQ(rounds[0].observations[0].annotations.at("summary"),
            "hit ratio of api/page_cache is 90.0%, below its floor of 95.0%");
  rule.floor = 0.5;
  rounds = cache_rounds(windows, rule, context);
  ASSERT_EQ(rounds[0].observations.size(), 3u);
  EXPECT_TRUE(rounds[0].observations[1].condition);
  EXPECT_FALSE(rounds[0].observations[2].condition) << "10 lookups are fewer than min_lookups";
}

TEST(RegressionObservations, SayWhatRoseWhenAndAfterWhichDeploy) {
  Shift shift;
  shift.before_from = at(0);
  shift.before_to = at(600);
  shift.after_from = at(600);
  shift.after_to = at(900);
  shift.before = 20e6;
  shift.after = 25e6;
  shift.pvalue = 1e-9;
  const Deploy deploy{at(590), "executable /srv/api build-id 1a2b3c4d5e6f -> 6f5e4d3c2b1a"};
  const Observation o = latency_regression_observation(window(0, "load", 20), shift, deploy,
                                                       config::LatencyStatistic::p95, context);
  EXPECT_TRUE(o.condition);
  EXPECT_EQ(o.labels.at("alertname"), "LatencyRegression");
  EXPECT_EQ(o.annotations.at("summary"),
            "p95 latency of api/load rose +25% (20ms -> 25ms) at 2027-01-15T08:10:00Z, following the deploy at "
            "2027-01-15T08:09:50Z (executable /srv/api build-id 1a2b3c4d5e6f -> 6f5e4d3c2b1a)");

  FunctionTable functions;
  FunctionRegression r;
  r.function = functions.intern({profile::FrameKind::native, "hot_b", "cpu_split"});
  r.shift = shift;
  r.shift.before = 0.30;
  r.shift.after = 0.36;
  r.self_before = 0.30;
  r.self_after = 0.36;
  r.total_before = 0.31;
  r.total_after = 0.37;
  const Observation cpu = cpu_regression_observation("api", std::vector<FunctionRegression>{r}, functions, std::nullopt,
                                                     context);
  EXPECT_EQ(cpu.labels, (Labels{{"alertname", "CpuRegression"}, {"host", "web-01"}, {"target", "api"},
                                {"severity", "warning"}}));
  EXPECT_EQ(cpu.annotations.at("summary"),
            "CPU regression in api: hot_b self share 30.0% -> 36.0% (+20%) at 2027-01-15T08:10:00Z");
  EXPECT_EQ(cpu.annotations.at("functions"), "hot_b (cpu_split): self 30.0% -> 36.0%, total 31.0% -> 37.0%");
  EXPECT_EQ(cpu.annotations.at("function"), "hot_b");
  EXPECT_EQ(cpu.annotations.at("diff"), diff_link(context.external_url, "web-01", "api", {at(0), at(600)},
                                                  {at(600), at(900)}));
  EXPECT_FALSE(cpu_regression_observation("api", {}, functions, std::nullopt, context).condition);
}

config::Receiver receiver(const std::string& name, bool send_resolved = true) {
  config::Receiver r;
  r.name = name;
  r.url = "http://127.0.0.1:1/" + name;
  r.send_resolved = send_resolved;
  r.repeat_interval = 1h;
  return r;
}

Round tier_round(int start, std::initializer_list<std::pair<std::string, std::uint64_t>> p95_ms) {
  std::vector<LatencyWindow> windows;
  for (const auto& [op, ms] : p95_ms) windows.push_back(window(start, op, ms));
  return tier_rounds(windows, config::TierRule{}, context).at(0);
}

TEST(Evaluator, FiresNotifiesOnceRepeatsAndResolves) {
  Evaluator e({receiver("ops"), receiver("quiet", false)});
  Batch b;
  for (int t : {0, 10}) e.apply(tier_round(t, {{"load", 800}}), b);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].kind, EventKind::pending);
  EXPECT_EQ(b.events[0].at, at(0));
  EXPECT_TRUE(b.notifications.empty());
  e.apply(tier_round(20, {{"load", 800}}), b);
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[1].kind, EventKind::firing);
  EXPECT_EQ(b.events[1].at, at(30));
  ASSERT_EQ(b.notifications.size(), 2u);
  EXPECT_EQ(b.notifications[0].receiver, "ops");
  EXPECT_TRUE(b.notifications[0].notice.firing);
  EXPECT_EQ(b.notifications[0].notice.starts_at, at(30));
  EXPECT_EQ(b.notifications[0].notice.generator_url, b.notifications[0].notice.annotations.at("dashboard"));
  const std::string fp = b.notifications[0].notice.fingerprint;
  EXPECT_EQ(b.alerts.at(fp).progress.state, State::firing);
  EXPECT_EQ(b.alerts.at(fp).notified.at("ops"), at(30));

  // Still firing: deduplicated until repeat_interval.
  Batch more;
  for (int t : {30, 40}) e.apply(tier_round(t, {{"load", 900}}), more);
  e.repeat(at(50), more);
  EXPECT_TRUE(more.notifications.empty());
  EXPECT_TRUE(more.events.empty());
  e.repeat(at(30) + 1h, more);
  ASSERT_EQ(more.notifications.size(), 2u);
  EXPECT_EQ(e.active().at(fp).notified.at("ops"), at(30) + 1h);

  // Clear (the operation has no calls: not in the round) for 30s: resolved, only to receivers that want it.
  Batch resolved;
  for (int t : {50, 60, 70}) e.apply(tier_round(t, {{"lookup", 100}}), resolved);
  ASSERT_EQ(resolved.events.size(), 1u);
  EXPECT_EQ(resolved.events[0].kind, EventKind::resolved);
  EXPECT_EQ(resolved.events[0].at, at(80));
  ASSERT_EQ(resolved.notifications.size(), 1u);
  EXPECT_EQ(resolved.notifications[0].receiver, "ops");
  EXPECT_FALSE(resolved.notifications[0].notice.firing);
  EXPECT_EQ(resolved.notifications[0].notice.starts_at, at(30));
  EXPECT_EQ(resolved.notifications[0].notice.ends_at, at(80));
  EXPECT_TRUE(e.active().empty());
  EXPECT_EQ(resolved.alerts.at(fp).progress.state, State::inactive);
  EXPECT_EQ(resolved.alerts.at(fp).resolved_at, at(80));
}

TEST(Evaluator, RestartsFromWhatWasStored) {
  Evaluator first({receiver("ops")});
  Batch b;
  for (int t : {0, 10, 20}) first.apply(tier_round(t, {{"load", 800}}), b);
  ASSERT_EQ(first.active().size(), 1u);
  std::vector<AlertRecord> stored;
  for (const auto& [fp, r] : b.alerts) stored.push_back(r);

  Evaluator second({receiver("ops")});
  second.load(stored);
  Batch after;
  second.apply(tier_round(30, {{"load", 800}}), after);
  second.repeat(at(60), after);
  EXPECT_TRUE(after.notifications.empty()) << "a restart must not notify a firing alert again";
  EXPECT_TRUE(after.events.empty());
  // A receiver added meanwhile hears of it at once.
  second.set_receivers({receiver("ops"), receiver("new")});
  second.repeat(at(60), after);
  ASSERT_EQ(after.notifications.size(), 1u);
  EXPECT_EQ(after.notifications[0].receiver, "new");
}

TEST(Evaluator, ClearRegressionVerdictsKeepWhatTheAlertSaid) {
  Evaluator e({receiver("ops")});
  Round round{cpu_regression_rule, at(0), at(0), Hold{0s, 5min}, {}};
  Observation o;
  o.labels = {{"alertname", "CpuRegression"}, {"target", "api"}};
  o.annotations = {{"summary", "CPU regression in api"}};
  o.condition = true;
  round.observations = {o};
  Batch b;
  e.apply(round, b);
  ASSERT_EQ(b.notifications.size(), 1u);
  round.start = round.end = at(60);
  round.observations[0].condition = false;
  round.observations[0].annotations.clear();
  e.apply(round, b);
  EXPECT_EQ(e.active().begin()->second.annotations.at("summary"), "CPU regression in api");
}

TEST(Backoff, DoublesUpToTheMaxWithJitter) {
  EXPECT_EQ(backoff_delay(1, 1s, 5min, 0.999999), Duration(999'999));
  EXPECT_EQ(backoff_delay(1, 1s, 5min, 0.0), 500ms);
  EXPECT_EQ(backoff_delay(4, 1s, 5min, 0.0), 4s);
  EXPECT_EQ(backoff_delay(30, 1s, 5min, 0.0), 150s);
  EXPECT_LE(backoff_delay(30, 1s, 5min, 0.99), 5min);
}

}  // namespace
}  // namespace perfwatch::alerts
