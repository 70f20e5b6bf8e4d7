// End to end: the dashboard's latency views on a real perfwatchd timing tests/workloads/sleeper's
// functions through uprobes. Debian's chromium, driven by playwright-core (tests/browser/latency.cjs),
// checks the overview's tier states and the target page's latency table and uPlot charts with their
// threshold lines (label browser). Needs root, BTF, node and chromium; fails loudly without them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;

TEST(LatencyDashboardE2E, BrowserShowsTierStatesAndLatencyCharts) {
  const std::uint16_t port = free_port(SOCK_STREAM);
  const std::string sleeper = SLEEPER_PATH;
  Daemon daemon("latency-dashboard",
                "log_level: debug\nsampling:\n  window: 2s\n"
                "dashboard:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n"
                "targets:\n"
                "  - name: sleeper\n"
                "    match: {cmdline: \"sleeper calls\"}\n"
                "    operations:\n"
                "      - {name: fast, tier: T1, uprobe: \"" + sleeper + ":op_fast\"}\n"
                "      - {name: medium, tier: T1, uprobe: \"" + sleeper + ":op_medium\"}\n"
                "      - {name: slow, tier: T3, uprobe: \"" + sleeper + ":op_slow\"}\n");
  ASSERT_TRUE(daemon.started());
  // T1 holds a fast operation and one slower than 100 ms, so T1 is slow; T3's 700 ms calls are within 2 s.
  std::vector<std::string> argv{sleeper, "calls"};
  for (int i = 0; i < 4; ++i) argv.push_back("fast:30");
  for (int i = 0; i < 3; ++i) argv.push_back("medium:150");
  for (int i = 0; i < 2; ++i) argv.push_back("slow:700");
  GatedChild child = spawn_gated(argv);
  ASSERT_TRUE(daemon.wait_for_log("uprobe attached", child.pid, 3)) << daemon.log();
  child.open();
  ASSERT_EQ(wait_exit(child.pid), 0);
  wait_for_windows();

  const std::string shots = SCREENSHOT_DIR;
  setenv("NODE_PATH", NODE_MODULES, 1);
  const std::string log = (daemon.dir() / "browser.log").string();
  auto [code, out] = run({NODE_PATH_BIN, BROWSER_SCRIPT, "http://127.0.0.1:" + std::to_string(port), "sleeper", shots,
                          "T1=slow", "T2=none", "T3=ok", "T4=none", "T5=none", "fast=ok:4", "medium=slow:3", "slow=ok:2"},
                         log);
  EXPECT_EQ(code, 0) << slurp(log) << "\n" << daemon.log();
  EXPECT_NE(out.find("ok: latency overview"), std::string::npos) << out;
  for (const char* png : {"latency-overview.png", "latency-target.png", "latency-zoomed.png"})
    EXPECT_GT(std::filesystem::file_size(std::filesystem::path(shots) / png), 10000u) << png;
}

}  // namespace
}  // namespace perfwatch::e2e
