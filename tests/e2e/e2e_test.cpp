// End to end: the real perfwatchd (embedded PostgreSQL, real BPF) profiles real workloads, and the
// real perfwatch CLI reads the result back. Needs root and BTF; fails loudly without them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "support.h"

namespace perfwatch::e2e {
namespace {

using namespace std::chrono_literals;

const std::string cpu_split = CPU_SPLIT_PATH;
constexpr double kHz = 999;

const char* const kConfig =
    "log_level: debug\n"
    "sampling:\n  frequency_hz: 999\n  window: 2s\n"  // kHz
    "targets:\n"
    // First match wins: the short-lived runs ("split 0.x") are their own target.
    "  - name: short\n    match: {cmdline: \"cpu_split split 0\\\\.\"}\n"
    "  - name: split\n    match: {cmdline: \"cpu_split split\"}\n"
    "  - name: sys\n    match: {cmdline: \"cpu_split syscalls\"}\n";

class DaemonE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>("cpu", kConfig);
    ASSERT_TRUE(daemon_->started());
  }
  std::string cli_folded(const std::string& target, const std::string& since = "5m") {
    return daemon_->folded(target, since);
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DaemonE2E, AttributesAKnownCpuSplitWithin3Points) {
  // Started after the daemon: found through the exec event.
  auto [code, out] = run({cpu_split, "split", "8"}, "/dev/null");
  ASSERT_EQ(code, 0);
  wait_for_windows();
  Folded f(cli_folded("split"));
  // Every sample of the process's CPU time, at 999 Hz, whatever else the machine is doing: none lost
  // or counted twice at the window boundaries it crossed.
  const double expected = cpu_seconds(out) * kHz;
  ASSERT_GT(expected, 2000) << out;
  EXPECT_NEAR(static_cast<double>(f.total), expected, 0.05 * expected);
  EXPECT_NEAR(f.share("hot_a"), 60.0, 3.0);
  EXPECT_NEAR(f.share("hot_b"), 30.0, 3.0);
  EXPECT_NEAR(f.share("hot_c"), 10.0, 3.0);
  EXPECT_GT(f.share("main"), 95.0) << "native stacks should unwind to main";
  EXPECT_EQ(f.share("syscall_heavy"), 0.0) << "another target's stacks leaked in";
}

TEST_F(DaemonE2E, ShowsKernelFramesForSyscallHeavyCode) {
  auto [code, out] = run({cpu_split, "syscalls", "4"}, "/dev/null");
  ASSERT_EQ(code, 0);
  wait_for_windows();
  std::string text = cli_folded("sys");
  Folded f(text);
  const double expected = cpu_seconds(out) * kHz;
  EXPECT_NEAR(static_cast<double>(f.total), expected, 0.05 * expected);
  EXPECT_GT(f.share("syscall_heavy"), 90.0);
  // Time goes to the kernel's read path of /dev/zero under the user frames.
  std::uint64_t with_kernel = 0;
  for (const auto& [stack, count] : f.lines)
    if (stack.find("syscall_heavy;") != std::string::npos &&
        (stack.find("read") != std::string::npos && stack.find("entry_SYSCALL") != std::string::npos))
      with_kernel += count;
  EXPECT_GT(100.0 * with_kernel / f.total, 50.0) << text.substr(0, 2000);
}

TEST_F(DaemonE2E, SurvivesExitingTargetsAndPidReuse) {
  // Short-lived target processes that exit mid-window.
  for (int i = 0; i < 5; ++i) {
    auto [code, out] = run({cpu_split, "split", "0.3"}, "/dev/null");
    ASSERT_EQ(code, 0);
  }
  // Reuse one target's PID for an unrelated process: its samples must not land in the target.
  Child first = spawn({cpu_split, "split", "0.5"}, "/dev/null");
  pid_t reused_pid = first.pid;
  ASSERT_EQ(wait_exit(first.pid), 0);
  bool reused = false;
  for (int attempt = 0; attempt < 50 && !reused; ++attempt) {
    std::ofstream("/proc/sys/kernel/ns_last_pid") << (reused_pid - 1);
    Child other = spawn({cpu_split, "syscalls", "1.5"}, "/dev/null");
    reused = other.pid == reused_pid;
    ASSERT_EQ(wait_exit(other.pid), 0);
  }
  ASSERT_TRUE(reused) << "could not make the kernel reuse PID " << reused_pid;
  wait_for_windows();
  ASSERT_TRUE(daemon_->alive()) << "perfwatchd died:\n" << daemon_->log();
  Folded shorts(cli_folded("short", "1m"));
  EXPECT_GT(shorts.total, 500u) << "short-lived processes were not profiled";
  EXPECT_EQ(shorts.share("syscall_heavy"), 0.0) << "the process that reused the PID was attributed to the old target";
  Folded sys(cli_folded("sys", "1m"));
  EXPECT_GT(sys.share("syscall_heavy"), 90.0) << "the process that reused the PID was not profiled as itself";
}

TEST_F(DaemonE2E, CliListsTargetsWithPidsAndSamples) {
  // The schema is created by perfwatchd's writer, which may still be migrating right after start.
  wait_for_windows();
  auto [code, out] = daemon_->cli({"targets", "--format", "json"});
  ASSERT_EQ(code, 0) << slurp((daemon_->dir() / "cli.log").string());
  EXPECT_NE(out.find("\"split\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"samples\""), std::string::npos) << out;
}

TEST_F(DaemonE2E, ReloadWithABadConfigKeepsTheRunningOne) {
  daemon_->write_config(std::string(kConfig) + "  - name: broken\n    match: {cmdline: \"(\"}\n");
  daemon_->reload();
  std::this_thread::sleep_for(1s);
  daemon_->write_config(kConfig);
  EXPECT_NE(daemon_->log().find("reload failed; keeping the running config"), std::string::npos);
  ASSERT_TRUE(daemon_->alive()) << "perfwatchd died on a bad reload";
  auto [code, out] = run({cpu_split, "split", "3"}, "/dev/null");
  ASSERT_EQ(code, 0);
  wait_for_windows();
  EXPECT_GT(Folded(cli_folded("split", "20s")).total, 1500u) << "sampling stopped after the failed reload";
}

}  // namespace
}  // namespace perfwatch::e2e
