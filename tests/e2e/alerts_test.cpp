// Alerts end to end: the real perfwatchd (embedded PostgreSQL, real BPF) profiles real workloads whose
// hot function becomes 20% slower, finds the regression, and notifies a real local webhook receiver,
// naming the function, the deploy it follows and the differential flame graph; a receiver that is down
// across a daemon restart gets the notification once it is back, exactly once; `perfwatch alerts`
// lists the alert with its history; and the demo with a regression switched on makes an alert at
// scripts/webhook-receiver.py that names the regressed function. Needs root and BTF; fails loudly
// without them.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "support.h"
#include "tests/alerts/receiver.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string cpu_split = CPU_SPLIT_PATH;
const std::string cpu_split_v2 = CPU_SPLIT_V2_PATH;
const std::string demo = DEMO_PATH;
const std::string webhook_receiver = WEBHOOK_RECEIVER_PATH;

// 1-second windows at 999 Hz: a point of the CPU series per window; regressions examined every 2 s.
// min_share 5%: the workload's clock_gettime calls (a few % of its CPU in a VM, their cost moving with
// the host's load) are left out, so the function a test slows down is the one named.
std::string config(const std::string& receiver_url, const std::string& cmdline, std::uint16_t dashboard_port = 0) {
  return "log_level: info\n"
         "sampling:\n  frequency_hz: 999\n  window: 1s\n"
         "dashboard:\n  listen: 127.0.0.1:" + std::to_string(dashboard_port ? dashboard_port : free_port()) + "\n"
         "alerts:\n"
         "  external_url: http://perfwatch.test:7460\n"
         "  evaluation_interval: 1s\n"
         "  regression:\n    baseline: 1h\n    interval: 2s\n    min_share: 5%\n"
         "  receivers:\n"
         "    - name: hook\n      url: " + receiver_url + "\n      backoff: {initial: 200ms, max: 2s}\n"
         "targets:\n"
         "  - name: app\n    match: {cmdline: \"" + cmdline + "\"}\n";
}

// The notifications of alerts named `alertname` the receiver got.
std::vector<nlohmann::json> notified(const test::WebhookReceiver& receiver, const std::string& alertname) {
  std::vector<nlohmann::json> out;
  for (const auto& r : receiver.requests()) {
    const nlohmann::json body = r.json();
    if (!body.is_object()) continue;
    for (const auto& alert : body["alerts"])
      if (alert["labels"]["alertname"] == alertname) out.push_back(alert);
  }
  return out;
}

std::vector<nlohmann::json> cpu_regressions(const test::WebhookReceiver& receiver) {
  return notified(receiver, "CpuRegression");
}

std::vector<nlohmann::json> wait_for(const test::WebhookReceiver& receiver, const std::string& alertname,
                                     std::chrono::seconds timeout) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(500ms))
    if (!notified(receiver, alertname).empty()) break;
  return notified(receiver, alertname);
}

std::vector<nlohmann::json> wait_for_regression(const test::WebhookReceiver& receiver, std::chrono::seconds timeout) {
  return wait_for(receiver, "CpuRegression", timeout);
}

// What every CpuRegression notification of hot_b must say.
void expect_names_hot_b(const nlohmann::json& alert) {
  EXPECT_EQ(alert["status"], "firing");
  EXPECT_EQ(alert["labels"]["target"], "app");
  EXPECT_EQ(alert["annotations"]["function"], "hot_b") << alert.dump(2);
  const std::string summary = alert["annotations"]["summary"];
  // hot_b takes 30% of each round before the slowdown; the share is sampled, so within two points of 30%.
  std::smatch share;
  ASSERT_TRUE(std::regex_search(summary, share, std::regex("^CPU regression in app: hot_b total share ([0-9.]+)%")))
      << summary;
  EXPECT_NEAR(std::stod(share[1].str()), 30, 2) << summary;
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

// The documented demo path (README, "Alerts"): the bundled demo with a regression switched on produces
// an alert at a local receiver (scripts/webhook-receiver.py) that names the regressed function.
// load_layer is timed by the StatsD timers the demo sends, so its latency is measured on every call on
// any machine; it does twice its work after 40 s, a change that stands out of the wall-clock noise of a
// busy 2-core test machine.
TEST(AlertsE2E, TheDemoWithARegressionSwitchedOnNamesTheRegressedFunction) {
  const std::uint16_t statsd = free_port(), hook = free_port();
  Daemon daemon("alerts-demo",
                "log_level: info\n"
                "sampling:\n  window: 2s\n"
                "dashboard:\n  listen: 127.0.0.1:" + std::to_string(free_port()) + "\n"
                "statsd:\n  listen: 127.0.0.1:" + std::to_string(statsd) + "\n"
                "alerts:\n"
                "  evaluation_interval: 1s\n"
                "  regression:\n    baseline: 1h\n    interval: 2s\n    min_calls: 5\n"
                "  receivers:\n    - {name: local, url: 'http://127.0.0.1:" + std::to_string(hook) + "/'}\n"
                "targets:\n"
                "  - name: demo\n"
                "    match: {cmdline: perfwatch-demo}\n"
                "    operations:\n"
                "      - {name: load_layer, tier: T3, statsd: perfwatch_demo.load_layer}\n"
                "      - {name: full_load, tier: T4, statsd: perfwatch_demo.full_load}\n");
  ASSERT_TRUE(daemon.started());
  const std::string received = (daemon.dir() / "notifications.jsonl").string();
  Child receiver = spawn({"/usr/bin/python3", webhook_receiver, "--port", std::to_string(hook), "--jsonl", received},
                         (daemon.dir() / "receiver.log").string(), true);
  const std::string data = (daemon.dir() / "demo-data").string();
  auto [code, out] = run({demo, "--seconds", "80", "--busy", "1", "--data-dir", data, "--statsd",
                          "127.0.0.1:" + std::to_string(statsd), "--regress", "load_layer", "--regress-after", "40",
                          "--regress-factor", "2"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("regression switched on: load_layer"), std::string::npos) << out;
  // The receiver's JSON lines: the alerts that name load_layer.
  const auto naming = [&] {
    std::vector<nlohmann::json> found;
    std::istringstream lines(slurp(received));
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json body = nlohmann::json::parse(line, nullptr, false);
      if (!body.is_object()) continue;
      for (const auto& alert : body["alerts"])
        if (alert["labels"]["alertname"] == "LatencyRegression" && alert["labels"]["operation"] == "load_layer")
          found.push_back(alert);
    }
    return found;
  };
  for (int i = 0; i < 60 && naming().empty(); ++i) std::this_thread::sleep_for(500ms);
  kill(receiver.pid, SIGTERM);
  const std::string printed = read_all(receiver.stdout_fd);
  wait_exit(receiver.pid);
  const auto alerts = naming();
  ASSERT_FALSE(alerts.empty()) << daemon.cli({"latency", "--target", "demo", "--since", "5m", "--format", "json"}).second;
  EXPECT_EQ(alerts[0]["labels"]["target"], "demo");
  const std::string summary = alerts[0]["annotations"]["summary"];
  EXPECT_EQ(summary.rfind("p95 latency of demo/load_layer rose +", 0), 0u) << summary;
  EXPECT_NE(printed.find("firing   LatencyRegression demo/load_layer: p95 latency of demo/load_layer rose +"),
            std::string::npos)
      << printed;
}

}  // namespace
}  // namespace perfwatch::e2e
