// The latency probes on the real kernel: uprobes on a native function, CPython's USDT probes and
// syscall tracepoints, each measured from child processes. Uprobes and USDT fire only on the first
// hit per thread on the CI machines (see ENVIRONMENT.md), so every measured call runs on a fresh thread.
#include "collector/latency_probes.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

#include "collector/oncpu_sampler.h"
#include "tests/bpf/support.h"

extern "C" __attribute__((noinline, used)) int pw_test_sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  asm volatile("" ::: "memory");  // not a tail call: the return probe needs the return
  return ms;
}

namespace perfwatch::collector {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::Child;

// A pipe the parent closes to let a child start once its probes are attached.
struct Gate {
  int fds[2] = {-1, -1};
  Gate() { EXPECT_EQ(pipe(fds), 0); }
  ~Gate() {
    close(fds[0]);
    close(fds[1]);
  }
  void wait_in_child() const {
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) > 0) {
    }
  }
  void open_in_parent() {
    close(fds[1]);
    fds[1] = -1;
  }
};

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

class LatencyProbesTest : public test::BpfTest {
 protected:
  void SetUp() override {
    test::BpfTest::SetUp();
    if (HasFatalFailure()) return;
    watched_ = test::create_watched_map();
  }
  std::unique_ptr<LatencyProbes> probes(std::vector<LatencyOperation> ops, SyscallAttach how = SyscallAttach::automatic) {
    auto created = LatencyProbes::create(watched_->fd(), std::move(ops), how);
    EXPECT_TRUE(created.ok()) << created.error().message;
    return created.ok() ? std::move(*created) : nullptr;
  }
  std::unique_ptr<WatchedMap> watched_;
};

// Checks the histogram of n timed calls against what they asked for and what their callers measured
// around them. Each call lasts at least what it asked to sleep, and its probes' span, from entry to
// return, lies within the span its caller measured around the call, which also holds the probes' own
// cost (microseconds on a real CPU, milliseconds on an emulated one: each hit traps and single-steps).
// So the k-th shortest call, the sum, the max and the slow count are bracketed; percentiles within
// their buckets' 1/32 (latency_hist.h).
void expect_bracketed(const profile::LatencyHistogram& h, std::vector<std::uint64_t> asked_ns,
                      std::vector<std::uint64_t> measured_ns, std::uint64_t threshold_ns) {
  ASSERT_EQ(asked_ns.size(), measured_ns.size());
  std::sort(asked_ns.begin(), asked_ns.end());
  std::sort(measured_ns.begin(), measured_ns.end());
  std::string calls;
  for (std::size_t i = 0; i < asked_ns.size(); ++i)
    calls += " " + profile::format_ns(static_cast<double>(asked_ns[i])) + "/" +
             profile::format_ns(static_cast<double>(measured_ns[i]));
  SCOPED_TRACE("calls by duration, asked/measured by the caller:" + calls);
  const std::size_t n = asked_ns.size();
  ASSERT_EQ(h.count, n);
  constexpr std::uint64_t kClocks = 10'000;  // ns: the probes' clock and the caller's are read apart
  const auto total = [](const std::vector<std::uint64_t>& v) { return std::accumulate(v.begin(), v.end(), std::uint64_t{0}); };
  EXPECT_GE(h.sum_ns + n * kClocks, total(asked_ns));
  EXPECT_LE(h.sum_ns, total(measured_ns) + n * kClocks);
  EXPECT_GE(h.max_ns + kClocks, asked_ns.back());
  EXPECT_LE(h.max_ns, measured_ns.back() + kClocks);
  for (std::size_t k = 1; k < n; ++k) {
    const auto p = static_cast<double>(profile::percentile(h, (static_cast<double>(k) - 0.5) / static_cast<double>(n)));
    EXPECT_GE(p, (1 - 1.0 / 32) * static_cast<double>(asked_ns[k - 1])) << "the call of rank " << k;
    EXPECT_LE(p, (1 + 1.0 / 32) * static_cast<double>(measured_ns[k - 1] + kClocks)) << "the call of rank " << k;
  }
  const auto over = [&](const std::vector<std::uint64_t>& v) {
    return static_cast<std::uint64_t>(std::count_if(v.begin(), v.end(), [&](std::uint64_t ns) { return ns > threshold_ns; }));
  };
  EXPECT_GE(h.slow, over(asked_ns)) << "calls over the threshold";
  EXPECT_LE(h.slow, over(measured_ns)) << "calls over the threshold";
}

// Memory a forked child's threads write and its parent reads after it exits.
template <typename T>
class Shared {
 public:
  explicit Shared(std::size_t n) : n_(n) {
    void* mem = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("mmap of shared memory failed");
    data_ = static_cast<T*>(mem);
  }
  ~Shared() { munmap(data_, n_ * sizeof(T)); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T& operator[](std::size_t i) { return data_[i]; }
  std::vector<T> values() const { return {data_, data_ + n_}; }

 private:
  T* data_ = nullptr;
  std::size_t n_;
};

TEST(PythonMatchTest, ModuleSplitsAndExplicitColon) {
  PythonMatch dotted = python_match("app.handlers.Handler.get");
  EXPECT_EQ(dotted.name_hash, python_name_hash("get"));
  EXPECT_EQ(dotted.module_hashes, (std::vector<std::uint64_t>{python_module_hash("app.handlers.Handler"),
                                                              python_module_hash("app.handlers"),
                                                              python_module_hash("app")}));
  PythonMatch exact = python_match("app.handlers:Handler.get");
  EXPECT_EQ(exact.name_hash, python_name_hash("get"));
  EXPECT_EQ(exact.module_hashes, std::vector<std::uint64_t>{python_module_hash("app.handlers")});
  EXPECT_EQ(python_name_hash(std::string(100, 'x')), python_name_hash(std::string(LAT_PY_NAME_LEN - 1, 'x')))
      << "names are hashed as far as the probe reads them";
}

TEST_F(LatencyProbesTest, UprobeTimesEveryCallFromConcurrentThreads) {
  constexpr std::uint64_t kSlow = 100'000'000;
  auto p = probes({{"sleep", 0, profile::OperationSource::uprobe, self_exe() + ":pw_test_sleep_ms", 0, "", true, kSlow}});
  ASSERT_TRUE(p);
  const std::vector<int> durations{30, 30, 30, 30, 150, 150, 700};
  Shared<std::uint64_t> measured(durations.size());  // ns, by each calling thread around its call
  Gate gate;
  Child child([&] {
    gate.wait_in_child();
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < durations.size(); ++i)
      threads.emplace_back([&, i] {
        const auto start = std::chrono::steady_clock::now();
        pw_test_sleep_ms(durations[i]);
        measured[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
      });
    for (auto& t : threads) t.join();
  });
  p->watch(child.pid(), 0);
  EXPECT_GE(p->attached_links(), 2u);
  p->drain();
  gate.open_in_parent();
  ASSERT_EQ(child.wait(), 0);
  LatencyDrain drained = p->drain();
  ASSERT_EQ(drained.histograms.size(), 1u);
  std::vector<std::uint64_t> asked;
  for (int d : durations) asked.push_back(static_cast<std::uint64_t>(d) * 1'000'000);
  expect_bracketed(drained.histograms[0], asked, measured.values(), kSlow);
  EXPECT_EQ(drained.stats.probe_calls, durations.size());
  EXPECT_EQ(drained.stats.lost_no_entry, 0u);
}

// A program the kernel rejects costs only its own source: the verifier really rejects python_entry here
// (the test-only fault point loads it as a socket filter, whose programs may not call tracing helpers),
// the uprobe programs load and measure, and state() gives each source's state with the kernel's reason.
TEST_F(LatencyProbesTest, ARejectedProgramCostsOnlyItsSource) {
  setenv("PERFWATCH_TEST_REJECT_PROGRAMS", "latency/python_entry", 1);
  auto p = probes({{"sleep", 0, profile::OperationSource::uprobe, self_exe() + ":pw_test_sleep_ms", 0, "", true, 1},
                   {"handler", 0, profile::OperationSource::python, "app.handler", 0, "", true, 1}});
  unsetenv("PERFWATCH_TEST_REJECT_PROGRAMS");
  ASSERT_TRUE(p);
  const profile::ProbeState python = p->state(profile::OperationSource::python);
  EXPECT_EQ(python.family, profile::ProbeFamily::latency_python);
  EXPECT_EQ(python.status, profile::ProbeStatus::failed);
  EXPECT_EQ(python.detail.rfind("the kernel rejected python_entry: ", 0), 0u) << python.detail;
  EXPECT_GT(python.detail.size(), std::string("the kernel rejected python_entry: ").size() + 10)
      << "the verifier's reason is missing: " << python.detail;
  EXPECT_EQ(p->state(profile::OperationSource::uprobe).status, profile::ProbeStatus::running);
  EXPECT_EQ(p->state(profile::OperationSource::syscall).status, profile::ProbeStatus::off) << "no syscall operation";

  Gate gate;
  Child child([&] {
    gate.wait_in_child();
    std::thread([] { pw_test_sleep_ms(20); }).join();
    std::thread([] { pw_test_sleep_ms(20); }).join();
  });
  p->watch(child.pid(), 0);
  EXPECT_EQ(p->attached_links(), 2u) << "the uprobe pair only: no USDT probes without their program";
  p->drain();
  gate.open_in_parent();
  ASSERT_EQ(child.wait(), 0);
  LatencyDrain drained = p->drain();
  EXPECT_EQ(drained.histograms[0].count, 2u);
  EXPECT_EQ(drained.histograms[1].count, 0u);
}

// CPython 3.11 fires function__entry only while a profile or trace function is set (the probe sits
// in the tracing path of RESUME), so each child sets a C-level no-op profiler (slice) right before
// its one measured call; function__return fires regardless. One call per fresh process: the first
// hit of each probe in a thread is the only one that fires on the CI machines.
TEST_F(LatencyProbesTest, PythonFunctionThroughUsdt) {
  const fs::path dir = fs::temp_directory_path() / ("pw-latency-py-" + std::to_string(getpid()));
  fs::create_directories(dir / "pwapp");
  std::ofstream(dir / "pwapp" / "__init__.py") << "";
  // The probe hashes names 8 bytes at a time: names that end inside, at and past a word, and one longer
  // than the LAT_PY_NAME_LEN - 1 bytes it reads, which both sides cut there.
  const std::vector<std::string> names{"f", "seven_c", "nine_char", "sixteen_chars_ab", std::string(70, 'n')};
  std::ofstream work(dir / "pwapp" / "work.py");
  work << "import time\n"
          "def measured(ms):\n    time.sleep(ms / 1000)\n"
          "def other(ms):\n    time.sleep(ms / 1000)\n";
  for (const std::string& name : names) work << "def " << name << "(ms):\n    time.sleep(ms / 1000)\n";
  work.close();
  std::vector<LatencyOperation> ops{{"measured", 0, profile::OperationSource::python, "pwapp.work.measured", 0, "", true, 100'000'000},
                                    {"other_module", 0, profile::OperationSource::python, "elsewhere:measured", 0, "", true, 1}};
  for (const std::string& name : names)
    ops.push_back({name, 0, profile::OperationSource::python, "pwapp.work." + name, 0, "", true, 100'000'000});
  auto p = probes(ops);
  ASSERT_TRUE(p);
  struct Run {
    std::string call;
    int stdin_fd;
    std::unique_ptr<Child> child;
  };
  std::vector<Run> runs;
  std::vector<std::string> calls{"measured(40)", "measured(40)", "measured(200)", "other(40)"};
  for (const std::string& name : names) calls.push_back(name + "(1)");
  // Each child writes how long its call took, measured around it, to the file its argument names.
  auto measured_file = [&](std::size_t run) { return dir / ("measured-" + std::to_string(run)); };
  for (const std::string& call : calls) {
    int in[2];
    ASSERT_EQ(pipe(in), 0);
    const std::string code = "import sys, time, pwapp.work as w\nsys.stdin.read()\nsys.setprofile(slice)\n"
                             "start = time.monotonic_ns()\nw." + call + "\nend = time.monotonic_ns()\n"
                             "sys.setprofile(None)\nopen(sys.argv[1], 'w').write(str(end - start))\n";
    const std::string out = measured_file(runs.size()).string();
    auto child = std::make_unique<Child>([&] {
      dup2(in[0], 0);
      close(in[1]);
      const std::string path = "PYTHONPATH=" + dir.string();
      char* env[] = {const_cast<char*>(path.c_str()), nullptr};
      execle("/usr/bin/python3.11", "python3.11", "-c", code.c_str(), out.c_str(), nullptr, env);
      _exit(127);
    });
    close(in[0]);
    runs.push_back({call, in[1], std::move(child)});
  }
  std::this_thread::sleep_for(1s);  // the interpreters have imported the module and wait on stdin
  for (Run& r : runs) p->watch(r.child->pid(), 0);
  EXPECT_GE(p->attached_links(), 2 * runs.size()) << "no USDT probes in /usr/bin/python3.11?";
  p->drain();
  for (Run& r : runs) close(r.stdin_fd);
  for (Run& r : runs) EXPECT_EQ(r.child->wait(), 0) << r.call;
  LatencyDrain drained = p->drain();
  std::vector<std::uint64_t> measured;  // the three measured() calls', by their callers
  for (std::size_t run = 0; run < 3; ++run) {
    std::uint64_t ns = 0;
    EXPECT_TRUE(std::ifstream(measured_file(run)) >> ns) << runs[run].call << " wrote no duration";
    measured.push_back(ns);
  }
  fs::remove_all(dir);
  const profile::LatencyHistogram& h = drained.histograms[0];
  EXPECT_EQ(h.count, 3u) << "three measured() calls; other() and the module filter excluded";
  expect_bracketed(h, {40'000'000, 40'000'000, 200'000'000}, measured, 100'000'000);
  EXPECT_EQ(drained.histograms[1].count, 0u) << "same function name, other module";
  for (std::size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(drained.histograms[2 + i].count, 1u) << "a name of " << names[i].size() << " bytes";
}

// Per-system-call tracepoints, and the raw_syscalls fallback of kernels built without them.
class LatencySyscallTest : public LatencyProbesTest, public ::testing::WithParamInterface<SyscallAttach> {};

TEST_P(LatencySyscallTest, FileReadsUnderAndOutsideAPathPrefix) {
  const fs::path dir = fs::temp_directory_path() / ("pw-latency-io-" + std::to_string(getpid()));
  fs::create_directories(dir / "data" / "sub");
  fs::create_directories(dir / "other");
  for (const char* f : {"data/a", "data/sub/b", "other/c"}) std::ofstream(dir / f) << std::string(4096, 'x');
  auto p = probes({{"under", 0, profile::OperationSource::syscall, "read", LAT_SYS_READ, (dir / "data").string(), true, 1},
                   {"regular", 0, profile::OperationSource::syscall, "read", LAT_SYS_READ, "", true, 1},
                   {"any", 0, profile::OperationSource::syscall, "read", LAT_SYS_READ, "", false, 1},
                   {"preads", 0, profile::OperationSource::syscall, "pread64", LAT_SYS_PREAD64, "", true, 1}},
              GetParam());
  ASSERT_TRUE(p);
  if (GetParam() == SyscallAttach::raw_syscalls) {
    EXPECT_EQ(p->attached_links(), 2u) << "raw_syscalls' enter and exit";
  }
  Gate gate;
  Child child([&] {
    gate.wait_in_child();
    char buf[512];
    auto read_n = [&](const fs::path& path, int n) {
      int fd = open(path.c_str(), O_RDONLY);
      for (int i = 0; i < n; ++i)
        if (read(fd, buf, sizeof buf) != sizeof buf) _exit(3);
      if (pread(fd, buf, sizeof buf, 0) != sizeof buf) _exit(4);
      close(fd);
    };
    read_n(dir / "data/a", 3);
    read_n(dir / "data/sub/b", 2);
    read_n(dir / "other/c", 4);
    int fds[2];
    if (pipe(fds) != 0 || write(fds[1], buf, 10) != 10 || read(fds[0], buf, 10) != 10) _exit(5);
  });
  ASSERT_TRUE(watched_->watch(child.pid(), 1, 0, true).ok());
  p->drain();
  gate.open_in_parent();
  ASSERT_EQ(child.wait(), 0);
  LatencyDrain drained = p->drain();
  fs::remove_all(dir);
  EXPECT_EQ(drained.histograms[0].count, 5u) << "reads of files at or below the prefix";
  EXPECT_EQ(drained.histograms[1].count, 9u) << "reads of regular files";
  EXPECT_GE(drained.histograms[2].count, 10u) << "reads of anything, the pipe included";
  EXPECT_EQ(drained.histograms[3].count, 3u) << "pread64 is its own operation";
  EXPECT_GT(drained.histograms[0].max_ns, 0u);
}

INSTANTIATE_TEST_SUITE_P(Attach, LatencySyscallTest,
                         ::testing::Values(SyscallAttach::automatic, SyscallAttach::raw_syscalls),
                         [](const ::testing::TestParamInfo<SyscallAttach>& info) {
                           return info.param == SyscallAttach::automatic ? "PerSyscallTracepoints" : "RawSyscalls";
                         });

}  // namespace
}  // namespace perfwatch::collector
