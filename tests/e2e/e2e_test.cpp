// End to end: the real perfwatchd (embedded PostgreSQL, real BPF) profiles real workloads, and the
// real perfwatch CLI reads the result back. Needs root and BTF; fails loudly without them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string perfwatchd = PERFWATCHD_PATH;
const std::string perfwatch_cli = PERFWATCH_CLI_PATH;
const std::string cpu_split = CPU_SPLIT_PATH;

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;
};

// Starts argv with stdout on a pipe (when asked) and stderr to a file.
Child spawn(const std::vector<std::string>& argv, const std::string& stderr_path = "/dev/null",
            bool pipe_stdout = false) {
  int fds[2] = {-1, -1};
  if (pipe_stdout && pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    if (pipe_stdout) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
    }
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (pipe_stdout) close(fds[1]);
  return {pid, pipe_stdout ? fds[0] : -1};
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Runs a command to completion and returns {exit code, stdout}.
std::pair<int, std::string> run(const std::vector<std::string>& argv, const std::string& stderr_path) {
  Child c = spawn(argv, stderr_path, true);
  std::string out = read_all(c.stdout_fd);
  return {wait_exit(c.pid), out};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses folded output into per-function inclusive shares and a total.
struct Folded {
  std::uint64_t total = 0;
  std::map<std::string, std::uint64_t> inclusive;  // samples of stacks containing the frame
  std::vector<std::pair<std::string, std::uint64_t>> lines;

  explicit Folded(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      auto space = line.rfind(' ');
      if (space == std::string::npos) continue;
      std::uint64_t count = std::stoull(line.substr(space + 1));
      std::string stack = line.substr(0, space);
      total += count;
      lines.emplace_back(stack, count);
      std::map<std::string, bool> seen;
      std::istringstream frames(stack);
      std::string frame;
      while (std::getline(frames, frame, ';'))
        if (!seen[frame]) {
          seen[frame] = true;
          inclusive[frame] += count;
        }
    }
  }
  double share(const std::string& frame) const {
    auto it = inclusive.find(frame);
    return total == 0 || it == inclusive.end() ? 0.0 : 100.0 * static_cast<double>(it->second) / total;
  }
};

class DaemonE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(geteuid(), 0u) << "the end-to-end tests load BPF programs: run them as root";
    ASSERT_TRUE(fs::exists("/sys/kernel/btf/vmlinux")) << "kernel BTF is required";
    dir_ = fs::temp_directory_path() / ("perfwatch-e2e-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    config_ = (dir_ / "perfwatch.yaml").string();
    log_ = (dir_ / "perfwatchd.log").string();
    std::ofstream(config_) << "state_dir: " << (dir_ / "state").string() << "\n"
                           << "log_level: debug\n"
                           << "sampling:\n  frequency_hz: 999\n  window: 2s\n"
                           << "targets:\n"
                           // First match wins: the short-lived runs ("split 0.x") are their own target.
                           << "  - name: short\n    match: {cmdline: \"cpu_split split 0\\\\.\"}\n"
                           << "  - name: split\n    match: {cmdline: \"cpu_split split\"}\n"
                           << "  - name: sys\n    match: {cmdline: \"cpu_split syscalls\"}\n";
    daemon_ = spawn({perfwatchd, "--config", config_}, log_).pid;
    ASSERT_GT(daemon_, 0);
    for (int i = 0; i < 600 && slurp(log_).find("perfwatchd started") == std::string::npos; ++i) {
      ASSERT_EQ(waitpid(daemon_, nullptr, WNOHANG), 0) << "perfwatchd exited during start-up:\n" << slurp(log_);
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_NE(slurp(log_).find("perfwatchd started"), std::string::npos) << slurp(log_);
  }

  static void TearDownTestSuite() {
    if (daemon_ > 0) {
      kill(daemon_, SIGTERM);
      int code = wait_exit(daemon_);
      EXPECT_EQ(code, 0) << "perfwatchd must exit 0 on SIGTERM:\n" << slurp(log_);
    }
    if (!HasFailure()) fs::remove_all(dir_);
  }

  static std::string cli_folded(const std::string& target, const std::string& since = "5m") {
    auto [code, out] = run({perfwatch_cli, "--config", config_, "flame", "--target", target, "--since", since,
                            "--format", "folded"},
                           (dir_ / "cli.log").string());
    EXPECT_EQ(code, 0) << slurp((dir_ / "cli.log").string());
    return out;
  }

  // Windows are written after they close: wait for the window holding `until` to be stored.
  static void wait_for_windows(std::chrono::seconds extra = 5s) { std::this_thread::sleep_for(extra); }

  static fs::path dir_;
  static std::string config_, log_;
  static pid_t daemon_;
};

fs::path DaemonE2E::dir_;
std::string DaemonE2E::config_, DaemonE2E::log_;
pid_t DaemonE2E::daemon_ = -1;

TEST_F(DaemonE2E, AttributesAKnownCpuSplitWithin3Points) {
  // Started after the daemon: found through the exec event.
  auto [code, out] = run({cpu_split, "split", "8"}, "/dev/null");
  ASSERT_EQ(code, 0);
  wait_for_windows();
  Folded f(cli_folded("split"));
  // ~8 s at 999 Hz on one CPU; allow for start-up and scheduling.
  EXPECT_GT(f.total, 6000u) << "too few samples";
  EXPECT_LT(f.total, 9500u) << "more samples than the workload's CPU time allows";
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
  EXPECT_GT(f.total, 2500u);
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
  ASSERT_EQ(waitpid(daemon_, nullptr, WNOHANG), 0) << "perfwatchd died:\n" << slurp(log_);
  Folded shorts(cli_folded("short", "1m"));
  EXPECT_GT(shorts.total, 500u) << "short-lived processes were not profiled";
  EXPECT_EQ(shorts.share("syscall_heavy"), 0.0) << "the process that reused the PID was attributed to the old target";
  Folded sys(cli_folded("sys", "1m"));
  EXPECT_GT(sys.share("syscall_heavy"), 90.0) << "the process that reused the PID was not profiled as itself";
}

TEST_F(DaemonE2E, CliListsTargetsWithPidsAndSamples) {
  auto [code, out] = run({perfwatch_cli, "--config", config_, "targets", "--format", "json"},
                         (dir_ / "cli.log").string());
  ASSERT_EQ(code, 0) << slurp((dir_ / "cli.log").string());
  EXPECT_NE(out.find("\"split\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"samples\""), std::string::npos) << out;
}

TEST_F(DaemonE2E, ReloadWithABadConfigKeepsTheRunningOne) {
  std::string good = slurp(config_);
  std::ofstream(config_) << good << "  - name: broken\n    match: {cmdline: \"(\"}\n";
  kill(daemon_, SIGHUP);
  std::this_thread::sleep_for(1s);
  std::ofstream(config_) << good;
  EXPECT_NE(slurp(log_).find("reload failed; keeping the running config"), std::string::npos);
  ASSERT_EQ(waitpid(daemon_, nullptr, WNOHANG), 0) << "perfwatchd died on a bad reload";
  auto [code, out] = run({cpu_split, "split", "3"}, "/dev/null");
  ASSERT_EQ(code, 0);
  wait_for_windows();
  EXPECT_GT(Folded(cli_folded("split", "20s")).total, 1500u) << "sampling stopped after the failed reload";
}

}  // namespace
