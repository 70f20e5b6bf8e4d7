// The dashboard's alerts and deploy markers end to end: the real perfwatchd profiles a real workload
// whose executable is replaced by a new build with a 20% slower hot function, so it stores a deploy
// marker and fires a CPU regression alert; the API lists both, /metrics reports the outbox and the
// database lag, and Debian's chromium (playwright-core) sees the alert with its history on the Alerts
// page and the deploy marker and the alert's span on the target page's time axis (label browser).
// Needs root, BTF, node and chromium; fails loudly without them.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(DashboardAlertsE2E, BrowserShowsTheAlertWithItsHistoryAndTheDeployMarker) {
  const std::uint16_t port = free_port();
  // 1-second windows at 999 Hz; regressions examined every 2 s against the last hour. No receiver:
  // the alert is stored and shown whether or not anyone is notified.
  Daemon daemon("dashboard-alerts",
                "log_level: info\n"
                "sampling:\n  frequency_hz: 999\n  window: 1s\n"
                "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n"
                "alerts:\n  evaluation_interval: 1s\n  regression:\n    baseline: 1h\n    interval: 2s\n"
                "targets:\n  - name: app\n    match: {cmdline: \"perfwatch-app split\"}\n");
  ASSERT_TRUE(daemon.started());
  const fs::path app = daemon.dir() / "perfwatch-app";
  fs::copy_file(CPU_SPLIT_PATH, app);
  auto [first, out1] = run({app.string(), "split", "25"});
  ASSERT_EQ(first, 0) << out1;
  // The deploy: a new build renamed over the old one, as package managers install it.
  fs::copy_file(CPU_SPLIT_V2_PATH, app.string() + ".new");
  fs::rename(app.string() + ".new", app);
  auto [second, out2] = run({app.string(), "split", "25"});
  ASSERT_EQ(second, 0) << out2;

  nlohmann::json alerts;
  for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(500ms)) {
    auto [status, body] = http_get(port, "/api/v1/alerts?since=15m&target=app&state=firing");
    ASSERT_EQ(status, 200) << body;
    alerts = nlohmann::json::parse(body)["alerts"];
    if (!alerts.empty()) break;
  }
  ASSERT_FALSE(alerts.empty()) << daemon.log();
  EXPECT_EQ(alerts[0]["labels"]["alertname"], "CpuRegression");
  EXPECT_EQ(alerts[0]["history"].back()["state"], "firing");
  auto [deploys_status, deploys_body] = http_get(port, "/api/v1/targets/app/deploys?since=15m");
  ASSERT_EQ(deploys_status, 200) << deploys_body;
  const nlohmann::json deploys = nlohmann::json::parse(deploys_body)["deploys"];
  ASSERT_EQ(deploys.size(), 1u) << deploys_body;
  EXPECT_NE(deploys[0]["summary"].get<std::string>().find("executable " + app.string() + " build-id "),
            std::string::npos) << deploys_body;

  // The daemon's health includes the outbox (nothing queued: no receiver) and the database lag.
  auto [metrics_status, metrics] = http_get(port, "/metrics");
  ASSERT_EQ(metrics_status, 200);
  EXPECT_NE(metrics.find("\nperfwatch_alert_outbox_pending 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nperfwatch_alert_outbox_oldest_age_seconds 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nperfwatch_storage_oldest_unwritten_age_seconds "), std::string::npos) << metrics;

  const std::string shots = SCREENSHOT_DIR;
  setenv("NODE_PATH", NODE_MODULES, 1);
  auto [code, out] = run({NODE_PATH_BIN, BROWSER_SCRIPT, "http://127.0.0.1:" + std::to_string(port), "app", shots,
                          alerts[0]["fingerprint"].get<std::string>(), deploys[0]["at"].get<std::string>()},
                         (daemon.dir() / "browser.log").string());
  EXPECT_EQ(code, 0) << slurp((daemon.dir() / "browser.log").string()) << "\n" << daemon.log();
  EXPECT_NE(out.find("ok: alerts page, history, deploy marker, alert span"), std::string::npos) << out;
  for (const char* png : {"alerts.png", "target-markers.png"})
    EXPECT_GT(fs::file_size(fs::path(shots) / png), 10000u) << png;
}

}  // namespace
}  // namespace perfwatch::e2e
