// End to end: the real perfwatchd profiles tests/workloads/cpu_split and serves its dashboard; a real
// Prometheus scrapes /metrics (label bpf) and Debian's chromium, driven by playwright-core, uses the
// web UI (label browser). Needs root, BTF, prometheus, node and chromium; fails loudly without them.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <thread>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;

std::string iso_time(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class DashboardE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    daemon_ = std::make_unique<Daemon>("dashboard",
                                       "sampling:\n  frequency_hz: 499\n  window: 2s\n"
                                       "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port_) + "\n"
                                       "targets:\n"
                                       "  - name: work\n    match: {cmdline: \"cpu_split (split|syscalls)\"}\n");
    ASSERT_TRUE(daemon_->started());
    ASSERT_EQ(http_get(port_, "/healthz").first, 200) << daemon_->log();
  }

  std::uint16_t port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DashboardE2E, PrometheusScrapesTheDaemonsHealth) {
  auto [code, out] = run({CPU_SPLIT_PATH, "split", "3"});
  ASSERT_EQ(code, 0);
  wait_for_windows(4s);

  const std::uint16_t prom_port = free_port();
  const auto dir = daemon_->dir() / "prometheus";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                        << "scrape_configs:\n  - job_name: perfwatch\n    static_configs:\n"
                                        << "      - targets: ['127.0.0.1:" << port_ << "']\n";
  Child prom = spawn({PROMETHEUS_PATH, "--config.file=" + (dir / "prometheus.yml").string(),
                      "--storage.tsdb.path=" + (dir / "data").string(),
                      "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                     (dir / "prometheus.log").string());
  ASSERT_GT(prom.pid, 0);
  // Prometheus's own view: the scrape is up and the samples counter came through the text format.
  auto query = [&](const std::string& expr) -> nlohmann::json {
    auto [status, body] = http_get(prom_port, "/api/v1/query?query=" + expr);
    if (status != 200) return nullptr;
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || doc["data"]["result"].empty()) return nullptr;
    return doc["data"]["result"][0];
  };
  nlohmann::json up, samples, lag, lost;
  for (int i = 0; i < 60 && (up.is_null() || samples.is_null() || lag.is_null() || lost.is_null()); ++i) {
    std::this_thread::sleep_for(500ms);
    up = query("up%7Bjob%3D%22perfwatch%22%7D");
    samples = query("perfwatch_samples_total");
    lag = query("perfwatch_storage_lag_seconds");
    // A family with labels, as Prometheus stored it.
    lost = query("perfwatch_samples_lost_total%7Breason%3D%22map_full%22%7D");
  }
  kill(prom.pid, SIGTERM);
  wait_exit(prom.pid);
  ASSERT_FALSE(up.is_null()) << slurp((dir / "prometheus.log").string());
  EXPECT_EQ(up["value"][1], "1");
  ASSERT_FALSE(samples.is_null());
  EXPECT_GT(std::stod(samples["value"][1].get<std::string>()), 1000) << "3 s at 499 Hz";
  EXPECT_EQ(samples["metric"]["job"], "perfwatch");
  ASSERT_FALSE(lag.is_null());
  EXPECT_LT(std::stod(lag["value"][1].get<std::string>()), 30) << "windows reach the database within seconds";
  ASSERT_FALSE(lost.is_null());
  EXPECT_EQ(lost["value"][1], "0");
}

TEST_F(DashboardE2E, BrowserShowsTheWorkloadZoomsAndDiffs) {
  // Phase 1: the 60/30/10 split alone. Phase 2, from a window boundary on: the split beside a
  // syscall-heavy process, so hot_a's share shrinks and syscall_heavy appears.
  const std::time_t t0 = std::time(nullptr) / 2 * 2;
  ASSERT_EQ(run({CPU_SPLIT_PATH, "split", "4"}).first, 0);
  std::time_t t1 = std::time(nullptr) / 2 * 2 + 2;
  std::this_thread::sleep_until(std::chrono::system_clock::from_time_t(t1) + 100ms);
  Child split = spawn({CPU_SPLIT_PATH, "split", "4"});
  Child sys = spawn({CPU_SPLIT_PATH, "syscalls", "4"});
  ASSERT_EQ(wait_exit(split.pid), 0);
  ASSERT_EQ(wait_exit(sys.pid), 0);
  const std::time_t t2 = std::time(nullptr) / 2 * 2 + 2;
  wait_for_windows(5s);

  const std::string shots = SCREENSHOT_DIR;
  setenv("NODE_PATH", NODE_MODULES, 1);
  const std::string diff_query = "base_from=" + iso_time(t0) + "&base_to=" + iso_time(t1) + "&from=" + iso_time(t1) +
                                 "&to=" + iso_time(t2);
  auto [code, out] = run({NODE_PATH_BIN, BROWSER_SCRIPT, "http://127.0.0.1:" + std::to_string(port_), "work", shots,
                          diff_query, "syscall_heavy", "hot_a", "hot_a", "hot_b", "hot_c", "main"},
                         (daemon_->dir() / "browser.log").string());
  EXPECT_EQ(code, 0) << slurp((daemon_->dir() / "browser.log").string()) << "\n" << daemon_->log();
  EXPECT_NE(out.find("ok: overview, target"), std::string::npos) << out;
  for (const char* png : {"overview.png", "target.png", "zoomed.png", "diff.png"})
    EXPECT_GT(std::filesystem::file_size(std::filesystem::path(shots) / png), 10000u) << png;
}

}  // namespace
}  // namespace perfwatch::e2e
