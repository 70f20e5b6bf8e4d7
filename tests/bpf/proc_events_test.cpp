#include "collector/proc_events.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collector/oncpu_sampler.h"
#include "tests/bpf/support.h"

namespace perfwatch::collector {
namespace {

using namespace std::chrono_literals;
using test::Child;

class ProcEventsTest : public test::BpfTest {
 protected:
  void SetUp() override {
    test::BpfTest::SetUp();
    if (HasFatalFailure()) return;
    OncpuOptions options;
    options.frequency_hz = 999;
    watched_map_ = test::create_watched_map();
    auto sampler = OncpuSampler::create(watched_map_->fd(), options);
    ASSERT_TRUE(sampler.ok()) << sampler.error().message;
    sampler_ = std::move(*sampler);
    auto events = ProcEvents::create(watched_map_->fd());
    ASSERT_TRUE(events.ok()) << events.error().message;
    events_ = std::move(*events);
  }

  // The watched map's value for pid, or nothing.
  std::optional<watch_value> watched_value(pid_t pid) {
    auto key = static_cast<std::uint32_t>(pid);
    watch_value value{};
    if (bpf_map_lookup_elem(watched_map_->fd(), &key, &value) != 0) return std::nullopt;
    return value;
  }
  // The watched generation of pid, or nothing.
  std::optional<std::uint32_t> watched(pid_t pid) {
    auto value = watched_value(pid);
    return value ? std::optional(value->generation) : std::nullopt;
  }

  // Polls until done(events seen so far) or the timeout; keeps only events about pids.
  std::vector<ProcEvent> poll_until(const std::vector<pid_t>& pids,
                                    const std::function<bool(const std::vector<ProcEvent>&)>& done,
                                    std::chrono::milliseconds timeout = 5s) {
    std::vector<ProcEvent> seen;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(seen) && std::chrono::steady_clock::now() < deadline) {
      int n = events_->poll(100, [&](const ProcEvent& e) {
        for (pid_t p : pids)
          if (e.pid == p || e.ppid == p) seen.push_back(e);
      });
      EXPECT_GE(n, 0);
    }
    return seen;
  }

  std::unique_ptr<WatchedMap> watched_map_;
  std::unique_ptr<OncpuSampler> sampler_;
  std::unique_ptr<ProcEvents> events_;
};

bool has(const std::vector<ProcEvent>& events, ProcEventType type, pid_t pid) {
  for (const ProcEvent& e : events)
    if (e.type == type && e.pid == pid) return true;
  return false;
}

int count(const std::vector<ProcEvent>& events, ProcEventType type, pid_t pid) {
  int n = 0;
  for (const ProcEvent& e : events) n += e.type == type && e.pid == pid;
  return n;
}

void write_byte(int fd) { ASSERT_EQ(write(fd, "x", 1), 1); }
void read_byte(int fd) {
  char c;
  if (read(fd, &c, 1) != 1) _exit(2);
}

// A watched parent forks a child that execs and exits: the child inherits the parent's
// generation in the kernel and is dropped from `watched` when it exits.
TEST_F(ProcEventsTest, ForkExecExitOfWatchedProcess) {
  int go[2], grandchild_go[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(grandchild_go), 0);
  Child parent([&] {
    read_byte(go[0]);
    pid_t child = fork();
    if (child == 0) {
      read_byte(grandchild_go[0]);
      execl("/bin/true", "true", nullptr);
      _exit(4);
    }
    waitpid(child, nullptr, 0);
  });
  const pid_t parent_pid = parent.pid();
  ASSERT_TRUE(watched_map_->watch(parent_pid, 42, 3, true).ok());
  write_byte(go[1]);

  // The parent does not exec, so the first event about it is the fork.
  auto seen = poll_until({parent_pid}, [](const auto& s) { return !s.empty(); });
  ASSERT_FALSE(seen.empty());
  const ProcEvent& fork_event = seen.front();
  ASSERT_EQ(fork_event.type, ProcEventType::fork);
  pid_t child = fork_event.pid;
  EXPECT_EQ(fork_event.ppid, parent_pid);
  EXPECT_EQ(fork_event.generation, 42u);
  EXPECT_EQ(watched(child), 42u) << "the child of a watched process is watched before it runs";
  auto child_value = watched_value(child);
  ASSERT_TRUE(child_value.has_value());
  EXPECT_EQ(child_value->target, 3u) << "the child belongs to its parent's target";
  EXPECT_EQ(child_value->flags, WATCH_PROFILE) << "and is profiled as its parent is";

  write_byte(grandchild_go[1]);
  seen = poll_until({parent_pid, child}, [&](const auto& s) {
    return has(s, ProcEventType::exit, child) && has(s, ProcEventType::exit, parent_pid);
  });
  EXPECT_EQ(parent.wait(), 0);

  auto exec_it = std::find_if(seen.begin(), seen.end(), [&](const ProcEvent& e) { return e.type == ProcEventType::exec; });
  ASSERT_NE(exec_it, seen.end());
  EXPECT_EQ(exec_it->pid, child);
  EXPECT_EQ(exec_it->ppid, parent_pid);
  EXPECT_EQ(exec_it->comm, "true");
  ASSERT_EQ(count(seen, ProcEventType::exit, child), 1);
  ASSERT_EQ(count(seen, ProcEventType::exit, parent_pid), 1);
  for (const ProcEvent& e : seen) {
    if (e.type == ProcEventType::exit) {
      EXPECT_EQ(e.generation, 42u);
    }
  }
  EXPECT_FALSE(watched(child).has_value());
  EXPECT_FALSE(watched(parent_pid).has_value());
  EXPECT_EQ(events_->stats().ringbuf_drops, 0u);
  EXPECT_EQ(events_->stats().inherit_failed, 0u);
}

// The state letter of /proc/PID/stat, which is the thread group leader's.
char leader_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// A process is gone when its last thread exits, not when its main thread or a thread exits.
TEST_F(ProcEventsTest, ExitOnlyWhenTheWholeThreadGroupIsDead) {
  int release[2];
  ASSERT_EQ(pipe(release), 0);
  Child process([&] {
    std::thread([] {}).join();  // a thread that exits while the process lives on
    std::thread last([&] {
      read_byte(release[0]);
      syscall(SYS_exit_group, 0);
    });
    last.detach();
    syscall(SYS_exit, 0);  // the main thread exits first
  });
  ASSERT_TRUE(watched_map_->watch(process.pid(), 5, 0, true).ok());

  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (leader_state(process.pid()) != 'Z' && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(leader_state(process.pid()), 'Z') << "the main thread should have exited";
  auto seen = poll_until({process.pid()}, [](const auto&) { return false; }, 300ms);
  EXPECT_FALSE(has(seen, ProcEventType::exit, process.pid()));
  EXPECT_EQ(watched(process.pid()), 5u);

  write_byte(release[1]);
  seen = poll_until({process.pid()}, [&](const auto& s) { return has(s, ProcEventType::exit, process.pid()); });
  EXPECT_EQ(count(seen, ProcEventType::exit, process.pid()), 1);
  EXPECT_FALSE(watched(process.pid()).has_value());
}

// Forces the kernel to hand out `pid` next; retries because other processes may take it first.
std::unique_ptr<Child> fork_with_pid(pid_t pid) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::ofstream("/proc/sys/kernel/ns_last_pid") << pid - 1;
    auto child = std::make_unique<Child>([] { pw_test_spin(); });
    if (child->pid() == pid) return child;
  }
  return nullptr;
}

// After a watched process exits its PID may be reused by an unrelated process: that one is not
// sampled until the daemon registers it, and then only under the new generation.
TEST_F(ProcEventsTest, ReusedPidIsNotSampledUnderTheOldGeneration) {
  auto old_process = std::make_unique<Child>([] { pw_test_spin(); });
  pid_t pid = old_process->pid();
  ASSERT_TRUE(watched_map_->watch(pid, 1, 0, true).ok());
  std::this_thread::sleep_for(200ms);
  old_process->kill();
  EXPECT_FALSE(watched(pid).has_value()) << "the exit probe removes the process from `watched`";
  DrainResult first = sampler_->drain();
  EXPECT_GT(test::total_count(first, pid), 0u);

  std::unique_ptr<Child> reused = fork_with_pid(pid);
  ASSERT_NE(reused, nullptr) << "could not get pid " << pid << " reused";
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(test::total_count(sampler_->drain(), pid), 0u) << "the new process is not watched yet";

  ASSERT_TRUE(watched_map_->watch(pid, 2, 0, true).ok());
  std::this_thread::sleep_for(500ms);
  DrainResult drained = sampler_->drain();
  EXPECT_GT(test::total_count(drained, pid), 100u);
  for (const RawStack& s : drained.stacks) {
    if (s.tgid == pid) {
      EXPECT_EQ(s.generation, 2u);
    }
  }
}

}  // namespace
}  // namespace perfwatch::collector
