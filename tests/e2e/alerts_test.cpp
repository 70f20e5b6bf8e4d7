// Alerts end to end: the real perfwatchd (embedded PostgreSQL, real BPF) profiles real workloads whose
// hot function becomes 20% slower, finds the regression, and notifies a real local webhook receiver,
// naming the function, the deploy it follows and the differential flame graph; a receiver that is down
// across a daemon restart gets the notification once it is back, exactly once; `perfwatch alerts`
// lists the alert with its history. Needs root and BTF; fails loudly without them.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "support.h"
#include "tests/alerts/receiver.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string cpu_split = CPU_SPLIT_PATH;
const std::string cpu_split_v2 = CPU_SPLIT_V2_PATH;

// 1-second windows at 999 Hz: a point of the CPU series per window; regressions examined every 2 s.
std::string config(const std::string& receiver_url, const std::string& cmdline, std::uint16_t dashboard_port = 0) {
  return "log_level: info\n"
         "sampling:\n  frequency_hz: 999\n  window: 1s\n"
         "dashboard:\n  listen: 127.0.0.1:" + std::to_string(dashboard_port ? dashboard_port : free_port()) + "\n"
         "alerts:\n"
         "  external_url: http://perfwatch.test:7460\n"
         "  evaluation_interval: 1s\n"
         "  regression:\n    baseline: 1h\n    interval: 2s\n"
         "  receivers:\n"
         "    - name: hook\n      url: " + receiver_url + "\n      backoff: {initial: 200ms, max: 2s}\n"
         "targets:\n"
         "  - name: app\n    match: {cmdline: \"" + cmdline + "\"}\n";
}

// The CpuRegression notifications the receiver got.
std::vector<nlohmann::json> cpu_regressions(const test::WebhookReceiver& receiver) {
  std::vector<nlohmann::json> out;
  for (const auto& r : receiver.requests()) {
    const nlohmann::json body = r.json();
    if (!body.is_object()) continue;
    for (const auto& alert : body["alerts"])
      if (alert["labels"]["alertname"] == "CpuRegression") out.push_back(alert);
  }
  return out;
}

std::vector<nlohmann::json> wait_for_regression(const test::WebhookReceiver& receiver, std::chrono::seconds timeout) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(500ms))
    if (!cpu_regressions(receiver).empty()) break;
  return cpu_regressions(receiver);
}

// What every CpuRegression notification of hot_b must say.
void expect_names_hot_b(const nlohmann::json& alert) {
  EXPECT_EQ(alert["status"], "firing");
  EXPECT_EQ(alert["labels"]["target"], "app");
  EXPECT_EQ(alert["annotations"]["function"], "hot_b") << alert.dump(2);
  const std::string summary = alert["annotations"]["summary"];
  EXPECT_NE(summary.find("CPU regression in app: hot_b total share 30."), std::string::npos) << summary;
  const std::string functions = alert["annotations"]["functions"];
  EXPECT_EQ(functions.rfind("hot_b (", 0), 0u) << "the function whose share grew most comes first: " << functions;
  const std::string diff = alert["annotations"]["diff"];
  EXPECT_EQ(diff.rfind("http://perfwatch.test:7460/#/target/app?host=", 0), 0u) << diff;
  EXPECT_NE(diff.find("&view=diff&base_from="), std::string::npos) << diff;
  EXPECT_EQ(alert["generatorURL"], diff);
}

TEST(AlertsE2E, AHotFunctionTwentyPercentSlowerMidRunIsNamed) {
  test::WebhookReceiver receiver;
  const std::uint16_t dashboard = free_port();
  Daemon daemon("alerts-slowdown", config(receiver.url(), "cpu_split slowdown", dashboard));
  ASSERT_TRUE(daemon.started());
  auto [code, out] = run({cpu_split, "slowdown", "50", "25"});
  ASSERT_EQ(code, 0) << out;
  const auto alerts = wait_for_regression(receiver, 30s);
  ASSERT_FALSE(alerts.empty()) << daemon.log();
  expect_names_hot_b(alerts[0]);
  EXPECT_EQ(alerts.size(), 1u) << "notified once while it keeps firing";

  // The CLI lists it with its history and its delivery.
  auto [cli_code, json] = daemon.cli({"alerts", "--since", "10m", "--format", "json"});
  ASSERT_EQ(cli_code, 0) << slurp((daemon.dir() / "cli.log").string());
  const nlohmann::json listed = nlohmann::json::parse(json);
  ASSERT_EQ(listed.size(), 1u) << json;
  EXPECT_EQ(listed[0]["rule"], "cpu_regression");
  EXPECT_EQ(listed[0]["state"], "firing");
  EXPECT_EQ(listed[0]["fingerprint"], alerts[0]["fingerprint"]);
  EXPECT_EQ(listed[0]["history"][0]["state"], "firing");
  EXPECT_EQ(listed[0]["deliveries"][0]["receiver"], "hook");
  EXPECT_EQ(listed[0]["deliveries"][0]["state"], "delivered");
  auto [table_code, table] = daemon.cli({"alerts"});
  EXPECT_EQ(table_code, 0);
  EXPECT_NE(table.find("firing    CpuRegression  app"), std::string::npos) << table;

  // And /metrics counts the delivery.
  const auto [status, metrics] = http_get(dashboard, "/metrics");
  ASSERT_EQ(status, 200) << metrics;
  EXPECT_NE(metrics.find("perfwatch_alert_notifications_total{result=\"delivered\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("perfwatch_alerts_active 1\n"), std::string::npos) << metrics;
}

TEST(AlertsE2E, ARegressionSaysWhichDeployItFollows) {
  test::WebhookReceiver receiver;
  Daemon daemon("alerts-deploy", config(receiver.url(), "perfwatch-app split"));
  ASSERT_TRUE(daemon.started());
  const fs::path app = daemon.dir() / "perfwatch-app";
  fs::copy_file(cpu_split, app);
  auto [first, out1] = run({app.string(), "split", "25"});
  ASSERT_EQ(first, 0) << out1;
  // The deploy: a new build installed the way package managers do (a new file renamed over the old).
  fs::copy_file(cpu_split_v2, app.string() + ".new");
  fs::rename(app.string() + ".new", app);
  auto [second, out2] = run({app.string(), "split", "25"});
  ASSERT_EQ(second, 0) << out2;
  const auto alerts = wait_for_regression(receiver, 30s);
  ASSERT_FALSE(alerts.empty()) << daemon.log();
  expect_names_hot_b(alerts[0]);
  const std::string deploy = alerts[0]["annotations"]["deploy"];
  EXPECT_NE(deploy.find("executable " + app.string() + " build-id "), std::string::npos) << deploy;
  const std::string summary = alerts[0]["annotations"]["summary"];
  EXPECT_NE(summary.find(", following the deploy at "), std::string::npos) << summary;
  EXPECT_NE(daemon.log().find("deploy noticed"), std::string::npos);
}

TEST(AlertsE2E, AReceiverDownAcrossADaemonRestartGetsTheAlertOnceWhenBack) {
  test::WebhookReceiver receiver;
  receiver.stop();
  Daemon daemon("alerts-restart", config(receiver.url(), "cpu_split slowdown"));
  ASSERT_TRUE(daemon.started());
  Child workload = spawn({cpu_split, "slowdown", "60", "20"}, "/dev/null", true);
  bool retrying = false;
  for (int i = 0; i < 100 && !retrying; ++i, std::this_thread::sleep_for(500ms))
    retrying = daemon.log().find("notification not delivered; retrying") != std::string::npos;
  ASSERT_TRUE(retrying) << daemon.log();
  ASSERT_TRUE(daemon.restart());
  receiver.start();
  const auto alerts = wait_for_regression(receiver, 30s);
  ASSERT_FALSE(alerts.empty()) << daemon.log();
  expect_names_hot_b(alerts[0]);
  // The workload goes on and the restarted daemon finds the same regression: it is still the same
  // firing alert, not a new notification.
  std::this_thread::sleep_for(10s);
  EXPECT_EQ(cpu_regressions(receiver).size(), 1u) << "exactly once";
  read_all(workload.stdout_fd);
  EXPECT_EQ(wait_exit(workload.pid), 0);
}

}  // namespace
}  // namespace perfwatch::e2e
