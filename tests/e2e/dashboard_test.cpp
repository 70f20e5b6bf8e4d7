// End to end: the real perfwatchd profiles tests/workloads/cpu_split, times StatsD timers sent by
// python3-statsd and serves its dashboard; a real Prometheus scrapes /metrics (label bpf) and Debian's
// chromium, driven by playwright-core, uses the web UI (label browser). Needs root, BTF, prometheus,
// python3-statsd, node and chromium; fails loudly without them.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <Poco/URI.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <map>
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
    port_ = free_port(SOCK_STREAM);
    statsd_port_ = free_port(SOCK_DGRAM);
    daemon_ = std::make_unique<Daemon>("dashboard",
                                       "sampling:\n  frequency_hz: 499\n  window: 2s\n"
                                       "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port_) + "\n"
                                       "statsd:\n  listen: 127.0.0.1:" + std::to_string(statsd_port_) + "\n"
                                       "targets:\n"
                                       "  - name: work\n    match: {cmdline: \"cpu_split (split|syscalls)\"}\n"
                                       "    operations:\n      - {name: render, tier: T1, statsd: e2e.render}\n"
                                       "    caches:\n      - {name: lru, hits: e2e.lru.hit, misses: e2e.lru.miss}\n");
    ASSERT_TRUE(daemon_->started());
    ASSERT_EQ(http_get(port_, "/healthz").first, 200) << daemon_->log();
  }

  std::uint16_t port_ = 0, statsd_port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DashboardE2E, PrometheusScrapesTheDaemonsHealthAndLatency) {
  auto [code, out] = run({CPU_SPLIT_PATH, "split", "3"});
  ASSERT_EQ(code, 0);
  ASSERT_GT(cpu_seconds(out), 0.5) << out;
  // Five render timers (one slower than T1), a metric no operation asked for and a malformed line.
  auto [sent, sent_out] = run({"/usr/bin/python3", "-c",
                               "import socket, statsd\n"
                               "c = statsd.StatsClient('127.0.0.1', " + std::to_string(statsd_port_) + ")\n"
                               "for ms in (20, 40, 60, 80, 250): c.timing('e2e.render', ms)\n"
                               "c.timing('e2e.unknown', 5)\n"
                               "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'e2e.render:fast|ms', "
                               "('127.0.0.1', " + std::to_string(statsd_port_) + "))\n"});
  ASSERT_EQ(sent, 0) << "python3-statsd missing? (Debian package python3-statsd)";
  wait_for_windows(4s);

  const std::uint16_t prom_port = free_port(SOCK_STREAM);
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
  // Prometheus's own view: the scrape is up and the families came through the text format.
  auto query = [&](const std::string& expr) -> nlohmann::json {
    std::string encoded;
    Poco::URI::encode(expr, "{}=\",&+", encoded);
    auto [status, body] = http_get(prom_port, "/api/v1/query?query=" + encoded);
    if (status != 200) return nullptr;
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || doc["data"]["result"].empty()) return nullptr;
    return doc["data"]["result"][0];
  };
  const char* exprs[] = {
      "up{job=\"perfwatch\"}", "perfwatch_samples_total", "perfwatch_storage_lag_seconds",
      // Families with labels, as Prometheus stored them.
      "perfwatch_samples_lost_total{reason=\"map_full\"}",
      "perfwatch_operation_latency_seconds{target=\"work\",operation=\"render\",quantile=\"0.99\"}",
      "perfwatch_operation_latency_seconds_count{operation=\"render\"}",
      "perfwatch_operation_latency_seconds_sum{operation=\"render\"}",
      "perfwatch_operation_slow_calls_total{operation=\"render\"}",
      "perfwatch_operation_threshold_seconds{operation=\"render\",tier=\"T1\"}", "perfwatch_statsd_unknown_total",
      "perfwatch_statsd_malformed_total", "perfwatch_statsd_timings_recorded_total", "perfwatch_latency_probe_links",
      // The probe families' states: the sampler runs, the LLC has its own state (unsupported in most VMs).
      "perfwatch_probe_state{family=\"cpu_sampler\",state=\"running\"}", "perfwatch_probe_state{family=\"llc\"}"};
  std::map<std::string, nlohmann::json> got;
  auto missing = [&] {
    return std::any_of(std::begin(exprs), std::end(exprs), [&](const char* e) { return got[e].is_null(); });
  };
  for (int i = 0; i < 60 && missing(); ++i) {
    std::this_thread::sleep_for(500ms);
    for (const char* e : exprs) got[e] = query(e);
  }
  kill(prom.pid, SIGTERM);
  wait_exit(prom.pid);
  for (const char* e : exprs) ASSERT_FALSE(got[e].is_null()) << e << "\n" << slurp((dir / "prometheus.log").string());
  auto value = [&](const char* e) { return got[e]["value"][1].get<std::string>(); };
  EXPECT_EQ(value("up{job=\"perfwatch\"}"), "1");
  EXPECT_GT(std::stod(value("perfwatch_samples_total")), 0.8 * 499 * cpu_seconds(out))
      << "the workload's CPU time at 499 Hz, however loaded the machine";
  EXPECT_EQ(got["perfwatch_samples_total"]["metric"]["job"], "perfwatch");
  EXPECT_LT(std::stod(value("perfwatch_storage_lag_seconds")), 30) << "windows reach the database within seconds";
  EXPECT_EQ(value("perfwatch_samples_lost_total{reason=\"map_full\"}"), "0");
  // The render timers: p99 is the slowest (known exactly), every call counted, one over T1.
  EXPECT_EQ(value("perfwatch_operation_latency_seconds{target=\"work\",operation=\"render\",quantile=\"0.99\"}"),
            "0.25");
  EXPECT_EQ(value("perfwatch_operation_latency_seconds_count{operation=\"render\"}"), "5");
  EXPECT_NEAR(std::stod(value("perfwatch_operation_latency_seconds_sum{operation=\"render\"}")), 0.45, 1e-9);
  EXPECT_EQ(value("perfwatch_operation_slow_calls_total{operation=\"render\"}"), "1");
  EXPECT_EQ(value("perfwatch_operation_threshold_seconds{operation=\"render\",tier=\"T1\"}"), "0.1");
  EXPECT_EQ(value("perfwatch_statsd_timings_recorded_total"), "5");
  EXPECT_EQ(value("perfwatch_statsd_unknown_total"), "1");
  EXPECT_EQ(value("perfwatch_statsd_malformed_total"), "1");
  EXPECT_EQ(value("perfwatch_latency_probe_links"), "0") << "StatsD needs no probes";
  EXPECT_EQ(value("perfwatch_probe_state{family=\"cpu_sampler\",state=\"running\"}"), "1");
  EXPECT_NE(got["perfwatch_probe_state{family=\"llc\"}"]["metric"]["detail"].get<std::string>(), "")
      << "the detail label says how the LLC is measured, or why not";
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
  // The application cache of the target, through the real StatsD client: 30 hits, 10 misses.
  auto [sent, sent_out] = run({"/usr/bin/python3", "-c",
                               "import statsd\n"
                               "c = statsd.StatsClient('127.0.0.1', " + std::to_string(statsd_port_) + ")\n"
                               "for _ in range(30): c.incr('e2e.lru.hit')\n"
                               "for _ in range(10): c.incr('e2e.lru.miss')\n"});
  ASSERT_EQ(sent, 0) << "python3-statsd missing? (Debian package python3-statsd)";
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
