// The engine on a real PostgreSQL, delivering to a real HTTP receiver: a tier violation fires and
// resolves (history and deliveries readable through storage::Query), survives a restart without being
// notified again, the burn-rate rule pages, and a CPU regression is found in stored profiles, naming
// the function, the deploy it follows and the differential flame graph of the two ranges.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "alerts/dispatcher.h"
#include "alerts/engine.h"
#include "common/time_text.h"
#include "storage/query.h"
#include "tests/alerts/receiver.h"
#include "tests/storage/support.h"

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;
using test::WebhookReceiver;

constexpr auto wait = 20s;

// Latency windows as the latency tables will give them; shared by the engine's connections.
class FakeLatency {
 public:
  void add(LatencyWindow w) {
    std::lock_guard lock(mutex_);
    windows_.push_back(std::move(w));
  }
  void set_totals(std::vector<LatencyTotals> totals) {
    std::lock_guard lock(mutex_);
    totals_ = std::move(totals);
  }
  std::vector<LatencyWindow> windows(TimePoint after, TimePoint until) {
    std::lock_guard lock(mutex_);
    std::vector<LatencyWindow> out;
    for (const LatencyWindow& w : windows_)
      if (w.start > after && w.start <= until) out.push_back(w);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
    return out;
  }
  std::vector<LatencyTotals> totals() {
    std::lock_guard lock(mutex_);
    return totals_;
  }

 private:
  std::mutex mutex_;
  std::vector<LatencyWindow> windows_;
  std::vector<LatencyTotals> totals_;
};

class FakeLatencySource final : public LatencySource {
 public:
  explicit FakeLatencySource(std::shared_ptr<FakeLatency> data) : data_(std::move(data)) {}
  Result<std::vector<LatencyWindow>> windows(const std::string&, TimePoint after, TimePoint until) override {
    return data_->windows(after, until);
  }
  Result<std::vector<LatencyTotals>> totals(const std::string&, TimePoint, std::span<const Duration>) override {
    return data_->totals();
  }

 private:
  std::shared_ptr<FakeLatency> data_;
};

// Window starts on multiples of 10 seconds, `ago` seconds before now (rounded down).
TimePoint window_start(int ago) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(profile::Clock::now().time_since_epoch()).count();
  return TimePoint(std::chrono::seconds((now - ago) / 10 * 10));
}

LatencyWindow latency(TimePoint start, std::uint64_t p95_ms) {
  LatencyWindow w;
  w.target = "api";
  w.operation = "load";
  w.tier = "T2";
  w.threshold_ns = 500'000'000;
  w.start = start;
  w.end = start + 10s;
  w.count = 100;
  w.slow = p95_ms > 500 ? 10 : 0;
  w.p50_ns = w.p95_ns = w.p99_ns = w.max_ns = p95_ms * 1'000'000;
  return w;
}

class EngineTest : public test::PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (HasFatalFailure()) return;
    config::Receiver r;
    r.name = "ops";
    r.url = receiver_.url();
    r.backoff_initial = 100ms;
    receivers_ = {r};
    alerts_.external_url = "http://127.0.0.1:7460";
    alerts_.evaluation_interval = 1s;
    alerts_.tier.for_ = 20s;
    alerts_.burn_rate.enabled = false;
    alerts_.regression.enabled = false;
    alerts_.receivers = receivers_;
    DispatcherOptions d;
    d.host = "test-host";
    d.connect = connect_options();
    d.external_url = alerts_.external_url;
    d.receivers = *resolve_receivers(receivers_);
    d.poll = 100ms;
    dispatcher_ = std::make_unique<Dispatcher>(std::move(d), std::make_shared<PocoHttpClient>());
  }
  void TearDown() override {
    engine_.reset();
    dispatcher_.reset();
    PgTest::TearDown();
  }
  void start_engine(SourcesFactory sources, std::vector<std::string> profiled = {}) {
    EngineOptions o;
    o.host = "test-host";
    o.connect = connect_options();
    o.alerts = alerts_;
    o.profiled_targets = std::move(profiled);
    o.on_notifications = [this] { dispatcher_->wake(); };
    engine_ = std::make_unique<Engine>(std::move(o), std::move(sources));
  }
  SourcesFactory fake_latency() {
    return [data = latency_](pqxx::connection&) {
      Sources s;
      s.latency = std::make_unique<FakeLatencySource>(data);
      return s;
    };
  }
  std::vector<storage::AlertRecord> stored_alerts() {
    auto q = storage::Query::connect(connect_options());
    EXPECT_TRUE(q.ok());
    auto alerts = (*q)->alerts("test-host", {profile::Clock::now() - 1h, profile::Clock::now() + 1h});
    EXPECT_TRUE(alerts.ok()) << alerts.error().message;
    return alerts.ok() ? *alerts : std::vector<storage::AlertRecord>{};
  }

  WebhookReceiver receiver_;
  std::vector<config::Receiver> receivers_;
  config::Alerts alerts_;
  std::shared_ptr<FakeLatency> latency_ = std::make_shared<FakeLatency>();
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, TierViolationFiresAndResolvesThroughTheOutbox) {
  const TimePoint t0 = window_start(120);
  for (int i = 0; i < 2; ++i) latency_->add(latency(t0 + i * 10s, 800));
  start_engine(fake_latency());
  auto got = receiver_.wait_for(1, wait);
  ASSERT_EQ(got.size(), 1u);
  const nlohmann::json firing = got[0].json();
  EXPECT_EQ(firing["status"], "firing");
  EXPECT_EQ(firing["alerts"][0]["labels"]["alertname"], "LatencyTierViolation");
  EXPECT_EQ(firing["alerts"][0]["labels"]["operation"], "load");
  EXPECT_EQ(firing["alerts"][0]["annotations"]["summary"], "p95 latency of api/load is 800ms, above its T2 threshold of 500ms");

  for (int i = 2; i < 4; ++i) latency_->add(latency(t0 + i * 10s, 100));
  engine_->wake();
  got = receiver_.wait_for(2, wait);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].json()["status"], "resolved");
  EXPECT_EQ(got[1].json()["alerts"][0]["fingerprint"], firing["alerts"][0]["fingerprint"]);

  std::this_thread::sleep_for(500ms);
  const auto alerts = stored_alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].state, "inactive");
  EXPECT_EQ(alerts[0].rule, "tier");
  std::vector<std::string> history;
  for (const auto& e : alerts[0].history) history.push_back(e.state);
  EXPECT_EQ(history, (std::vector<std::string>{"pending", "firing", "resolved"}));
  EXPECT_EQ(alerts[0].history[1].at, t0 + 20s);
  EXPECT_EQ(alerts[0].history[2].at, t0 + 40s);
  // Two notifications, or one whose undelivered state was replaced by the resolution while the firing
  // one was being sent (both were sent: the receiver got two requests).
  ASSERT_FALSE(alerts[0].deliveries.empty());
  for (const auto& d : alerts[0].deliveries) EXPECT_EQ(d.state, "delivered");
  EXPECT_EQ(alerts[0].deliveries.back().status, "resolved");
}

TEST_F(EngineTest, ARestartKeepsTheStateAndDoesNotNotifyAgain) {
  const TimePoint t0 = window_start(120);
  for (int i = 0; i < 3; ++i) latency_->add(latency(t0 + i * 10s, 800));
  start_engine(fake_latency());
  ASSERT_EQ(receiver_.wait_for(1, wait).size(), 1u);
  engine_.reset();
  for (int i = 3; i < 6; ++i) latency_->add(latency(t0 + i * 10s, 900));
  start_engine(fake_latency());
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(receiver_.requests().size(), 1u) << "still the same firing alert: not notified again";
  EXPECT_GE(engine_->stats().evaluations, 2u);
  EXPECT_EQ(engine_->stats().active, 1u);
}

TEST_F(EngineTest, BurnRatePages) {
  alerts_.burn_rate.enabled = true;
  alerts_.tier.enabled = false;
  LatencyTotals op{"api", "load", "T2", 500'000'000, {}};
  op.spans = {{1000, 200}, {100, 20}, {6000, 60}, {500, 5}, {72000, 700}, {6000, 60}};
  latency_->set_totals({op});
  start_engine(fake_latency());
  const auto got = receiver_.wait_for(1, wait);
  ASSERT_EQ(got.size(), 1u);
  const nlohmann::json alert = got[0].json()["alerts"][0];
  EXPECT_EQ(alert["labels"]["alertname"], "LatencyBurnRate");
  EXPECT_EQ(alert["labels"]["severity"], "page");
  EXPECT_EQ(alert["labels"]["window"], "1h/5m");
}

// A stored profile: main;hot and main;other, `samples` in all, hot's share as given.
profile::WindowProfile cpu_window(TimePoint start, double hot_share, std::uint64_t samples = 1000) {
  profile::WindowProfile w;
  w.host = "test-host";
  w.start = start;
  w.end = start + 10s;
  w.targets = {{"api", {42}, samples}};
  w.profile.frames = {{profile::FrameKind::native, "main", "/srv/api"},
                      {profile::FrameKind::native, "hot", "/srv/api"},
                      {profile::FrameKind::native, "other", "/srv/api"}};
  const auto hot = static_cast<std::uint64_t>(hot_share * static_cast<double>(samples));
  w.profile.stacks = {{0, {0, 1}, hot}, {0, {0, 2}, samples - hot}};
  w.stats.samples = samples;
  return w;
}

TEST_F(EngineTest, CpuRegressionFromStoredProfilesNamesTheFunctionAndTheDeploy) {
  alerts_.tier.enabled = false;
  alerts_.regression.enabled = true;
  alerts_.regression.interval = 1s;
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store.ok()) << store.error().message;
  const TimePoint t0 = window_start(900);
  for (int i = 0; i < 90; ++i) {
    // Sampling noise of a few tenths of a percent around 30%, then 36% after the deploy.
    const double share = (i < 60 ? 0.30 : 0.36) + 0.004 * ((i * 7) % 5 - 2);
    profile::WindowProfile w = cpu_window(t0 + i * 10s, share);
    if (i == 60)
      w.deploys = {{0, w.start + 2s, "executable /srv/api build-id 1a2b3c4d5e6f -> 6f5e4d3c2b1a",
                    {{"executable", "/srv/api", "build-id:1a2b3c4d5e6f", "build-id:6f5e4d3c2b1a"}}}};
    ASSERT_TRUE((*store)->write_window(w).ok());
  }
  start_engine(stored_sources, {"api"});
  const auto got = receiver_.wait_for(1, wait);
  ASSERT_EQ(got.size(), 1u);
  const nlohmann::json alert = got[0].json()["alerts"][0];
  EXPECT_EQ(alert["labels"]["alertname"], "CpuRegression");
  EXPECT_EQ(alert["labels"]["target"], "api");
  EXPECT_EQ(alert["annotations"]["function"], "hot");
  const std::string summary = alert["annotations"]["summary"];
  EXPECT_NE(summary.find("CPU regression in api: hot self share 30.0% -> 36.0% (+20%)"), std::string::npos) << summary;
  EXPECT_NE(summary.find(", following the deploy at"), std::string::npos) << summary;
  EXPECT_EQ(alert["annotations"]["deploy"].get<std::string>().find("executable /srv/api build-id 1a2b3c4d5e6f"), 21u);
  EXPECT_EQ(alert["annotations"]["functions"], "hot (api): self 30.0% -> 36.0%, total 30.0% -> 36.0%");
  const std::string diff = alert["annotations"]["diff"];
  EXPECT_EQ(diff.rfind("http://127.0.0.1:7460/#/target/api?host=test-host&view=diff&base_from=", 0), 0u) << diff;
  EXPECT_EQ(alert["generatorURL"], diff);
}

// A pinned baseline: the series is the pinned range, then what came after it; the regression's
// "before" is the pinned range.
TEST_F(EngineTest, CpuRegressionAgainstAPinnedBaseline) {
  alerts_.tier.enabled = false;
  alerts_.regression.enabled = true;
  alerts_.regression.interval = 1s;
  const TimePoint t0 = window_start(900);
  alerts_.regression.baseline_from = t0;
  alerts_.regression.baseline_to = t0 + 300s;
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store.ok()) << store.error().message;
  // The pinned range at 30%; then 5 minutes nobody pinned at 45%; the last 5 minutes at 36%.
  for (int i = 0; i < 90; ++i) {
    const double share = i < 30 ? 0.30 : i < 60 ? 0.45 : 0.36;
    ASSERT_TRUE((*store)->write_window(cpu_window(t0 + i * 10s, share + 0.004 * ((i * 7) % 5 - 2))).ok());
  }
  alerts_.regression.current = 5min;  // only the last 5 minutes are compared with the pinned range
  start_engine(stored_sources, {"api"});
  const auto got = receiver_.wait_for(1, wait);
  ASSERT_EQ(got.size(), 1u);
  const nlohmann::json alert = got[0].json()["alerts"][0];
  EXPECT_EQ(alert["annotations"]["function"], "hot");
  EXPECT_EQ(alert["annotations"]["functions"], "hot (api): self 30.0% -> 36.0%, total 30.0% -> 36.0%");
  EXPECT_EQ(alert["annotations"]["before"].get<std::string>().rfind(format_time(t0) + "/", 0), 0u)
      << alert["annotations"]["before"];
}

// The latency rules on what perfwatchd stores (migration 0002's latency table): a tier violation, its
// burn rate, and a regression of another operation, read back by the PostgreSQL latency source.
TEST_F(EngineTest, LatencyRulesOnStoredLatencies) {
  alerts_.burn_rate.enabled = true;
  alerts_.regression.enabled = true;
  alerts_.regression.interval = 1s;
  auto store = storage::PgStore::connect(connect_options());
  ASSERT_TRUE(store.ok()) << store.error().message;
  const TimePoint t0 = window_start(600);
  for (int i = 0; i < 60; ++i) {
    profile::WindowProfile w = cpu_window(t0 + i * 10s, 0.3);
    // "load" (T2): about 100 ms, 30% slower for the last 20 windows; "export" (T3): 4 s for the last 3.
    const std::uint64_t ms = (i < 40 ? 100 : 130) + (i % 2 ? 2 : 0);
    w.operations.push_back({0, "load", profile::OperationSource::uprobe, "/srv/api:load", profile::Tier::t2,
                            500'000'000, test::histogram_of(std::initializer_list<std::uint64_t>(
                                                                {ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms}),
                                                            500)});
    if (i >= 57)
      w.operations.push_back({0, "export", profile::OperationSource::python, "api.export", profile::Tier::t3,
                              2'000'000'000, test::histogram_of({4000, 4000, 4000, 4000, 4000, 4000, 4000, 4000,
                                                                 4000, 4000, 4000, 4000}, 2000)});
    ASSERT_TRUE((*store)->write_window(w).ok());
  }
  alerts_.burn_rate.min_calls = 30;
  start_engine(stored_sources);
  std::map<std::string, nlohmann::json> by_name;
  for (auto deadline = std::chrono::steady_clock::now() + wait;
       by_name.size() < 3 && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(200ms))
    for (const auto& r : receiver_.requests()) {
      const nlohmann::json body = r.json();
      for (const auto& alert : body["alerts"]) by_name[alert["labels"]["alertname"]] = alert;
    }
  ASSERT_EQ(by_name.size(), 3u) << nlohmann::json(by_name).dump(2);
  const nlohmann::json& tier = by_name["LatencyTierViolation"];
  EXPECT_EQ(tier["labels"]["operation"], "export");
  EXPECT_EQ(tier["labels"]["tier"], "T3");
  const nlohmann::json& burn = by_name["LatencyBurnRate"];
  EXPECT_EQ(burn["labels"]["operation"], "export");
  const nlohmann::json& regression = by_name["LatencyRegression"];
  EXPECT_EQ(regression["labels"]["operation"], "load");
  const std::string summary = regression["annotations"]["summary"];
  EXPECT_EQ(summary.rfind("p95 latency of api/load rose +3", 0), 0u) << summary;
}

}  // namespace
}  // namespace perfwatch::alerts
