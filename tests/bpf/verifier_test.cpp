// Verifier headroom: every program of every skeleton, loaded alone and configured by its collector's
// own configure_* function, with the verifier's statistics (log level 4). Each must load and stay at or
// below a fifth of the verifier's limit, so that the next kernel build does not tip it over (one took
// python_entry from 3,000 to over 1,000,000 processed instructions). A program whose attach point this
// kernel lacks (its collector does not load it here) is still loaded for the figure where the kernel can,
// and reported as not applicable, with the reason, where it cannot.
//
// Prints one line per program: `verifier: SKELETON PROGRAM kernel RELEASE insns N states N peak_states N`.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <cstdarg>
#include <cstdio>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "collector/bpf_skeleton.h"
#include "collector/cache_probes.h"
#include "collector/latency_probes.h"
#include "collector/oncpu_sampler.h"
#include "collector/proc_events.h"
#include "tests/bpf/support.h"
#include "cache.skel.h"
#include "latency.skel.h"
#include "oncpu.skel.h"
#include "procevents.skel.h"

namespace perfwatch::collector {
namespace {

// A fifth of the verifier's 1,000,000.
constexpr std::uint64_t kMaxProcessedInsns = 200'000;

struct ProgramStats {
  std::string program;
  bool loaded = false;
  std::string skipped;  // why its collector does not load it on this kernel, or ""
  std::string error;    // why it did not load
  std::uint64_t insns = 0, total_states = 0, peak_states = 0;
};

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

// libbpf's own warnings during a load: CO-RE relocation failures are reported there, not by the kernel.
std::string* libbpf_warnings = nullptr;
int capture_warnings(libbpf_print_level level, const char* format, va_list args) {
  if (level != LIBBPF_WARN || !libbpf_warnings) return 0;
  char line[1024];
  std::vsnprintf(line, sizeof line, format, args);
  if (libbpf_warnings->size() < 4096) *libbpf_warnings += line;
  return 0;
}

// The last lines of the kernel's log before its statistics, and libbpf's first warnings.
std::string failure_reason(const std::string& log, const std::string& warnings) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < log.size();) {
    std::size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.rfind("processed ", 0) != 0 && line.rfind("verification time", 0) != 0 &&
        line.rfind("stack depth", 0) != 0)
      lines.push_back(line);
  }
  std::string reason;
  for (std::size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) reason += lines[i] + " | ";
  reason += warnings.substr(0, 600);
  return reason;
}

template <typename Skel>
using Configure = std::function<Result<SkippedPrograms>(Skel&)>;

// Opens the skeleton, configures it as its collector does, and loads `name` alone at log_level.
template <typename Skel>
ProgramStats load_alone(const std::string& name, const Configure<Skel>& configure, std::uint32_t log_level,
                        std::string& log) {
  ProgramStats stats{name};
  SkeletonPtr<Skel> skel(Skel::open());
  if (!skel) {
    stats.error = "open failed";
    return stats;
  }
  auto skipped = configure(*skel);
  if (!skipped) {
    stats.error = "configure: " + skipped.error().message;
    return stats;
  }
  if (auto it = skipped->find(name); it != skipped->end()) stats.skipped = it->second;
  bpf_program* target = bpf_object__find_program_by_name(skel->obj, name.c_str());
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, prog == target);
  std::fill(log.begin(), log.end(), '\0');
  bpf_program__set_log_buf(target, log.data(), log.size());
  bpf_program__set_log_level(target, log_level);

  std::string warnings;
  libbpf_warnings = &warnings;
  libbpf_print_fn_t previous = libbpf_set_print(capture_warnings);
  const int err = Skel::load(skel.get());
  libbpf_set_print(previous);
  libbpf_warnings = nullptr;

  const std::string text(log.c_str());
  static const std::regex processed(R"(processed (\d+) insns \(limit \d+\).* total_states (\d+) peak_states (\d+))");
  if (std::smatch m; std::regex_search(text, m, processed)) {
    stats.insns = std::stoull(m[1]);
    stats.total_states = std::stoull(m[2]);
    stats.peak_states = std::stoull(m[3]);
  }
  stats.loaded = err == 0;
  if (!stats.loaded) stats.error = failure_reason(text, warnings);
  return stats;
}

// Every program of the skeleton, each loaded alone; printed, and checked against the headroom.
template <typename Skel>
void check_every_program(const char* skeleton, const Configure<Skel>& configure) {
  std::vector<std::string> names;
  {
    SkeletonPtr<Skel> skel(Skel::open());
    ASSERT_TRUE(skel) << skeleton << ": open failed";
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel->obj) names.emplace_back(bpf_program__name(prog));
  }
  ASSERT_FALSE(names.empty());
  const std::string release = kernel_release();
  std::string log(16 << 20, '\0');
  for (const std::string& name : names) {
    ProgramStats stats = load_alone<Skel>(name, configure, 4, log);
    // Statistics alone say nothing of a failure: load again with the verifier's messages.
    if (!stats.loaded && stats.error.rfind("configure", 0) != 0) {
      const ProgramStats verbose = load_alone<Skel>(name, configure, 1 | 4, log);
      stats.error = verbose.error;
    }
    if (stats.loaded) {
      std::printf("verifier: %-10s %-15s kernel %s insns %lu states %lu peak_states %lu%s\n", skeleton, name.c_str(),
                  release.c_str(), static_cast<unsigned long>(stats.insns), static_cast<unsigned long>(stats.total_states),
                  static_cast<unsigned long>(stats.peak_states),
                  stats.skipped.empty() ? "" : (" (not loaded by its collector here: " + stats.skipped + ")").c_str());
      testing::Test::RecordProperty(name + "_insns", static_cast<int>(stats.insns));
      EXPECT_LE(stats.insns, kMaxProcessedInsns) << skeleton << ":" << name << " on " << release;
    } else if (!stats.skipped.empty()) {
      std::printf("verifier: %-10s %-15s kernel %s not applicable: %s (load: %s)\n", skeleton, name.c_str(),
                  release.c_str(), stats.skipped.c_str(), stats.error.c_str());
    } else {
      std::printf("verifier: %-10s %-15s kernel %s FAILED: %s\n", skeleton, name.c_str(), release.c_str(),
                  stats.error.c_str());
      ADD_FAILURE() << skeleton << ":" << name << " does not load on " << release << ": " << stats.error;
    }
    std::fflush(stdout);
  }
}

class VerifierTest : public test::BpfTest {
 protected:
  void SetUp() override {
    test::BpfTest::SetUp();
    if (HasFatalFailure()) return;
    watched_ = test::create_watched_map();
  }
  std::unique_ptr<WatchedMap> watched_;
};

TEST_F(VerifierTest, OncpuProgramsLoadWithHeadroom) {
  check_every_program<oncpu_bpf>("oncpu", [this](oncpu_bpf& s) -> Result<SkippedPrograms> {
    if (Result<void> r = configure_oncpu(s, watched_->fd(), OncpuOptions{}); !r) return r.error();
    return SkippedPrograms{};
  });
}

TEST_F(VerifierTest, ProcessEventProgramsLoadWithHeadroom) {
  check_every_program<procevents_bpf>("procevents", [this](procevents_bpf& s) -> Result<SkippedPrograms> {
    if (Result<void> r = configure_procevents(s, watched_->fd(), 256 * 1024); !r) return r.error();
    return SkippedPrograms{};
  });
}

// Operations of every source, so that the configuration loads every program.
TEST_F(VerifierTest, LatencyProgramsLoadWithHeadroom) {
  using profile::OperationSource;
  const std::vector<LatencyOperation> operations{
      {"native", 0, OperationSource::uprobe, "/bin/true:main", 0, "", true, 100'000'000},
      {"python", 0, OperationSource::python, "pkg.module.function", 0, "", true, 100'000'000},
      {"reads", 0, OperationSource::syscall, "read", LAT_SYS_READ, "/var/tmp", true, 500'000'000},
      {"any_reads", 0, OperationSource::syscall, "read", LAT_SYS_READ, "", false, 500'000'000},
      {"opens", 1, OperationSource::syscall, "openat", LAT_SYS_OPENAT, "/var/tmp", true, 500'000'000}};
  check_every_program<latency_bpf>("latency", [&](latency_bpf& s) {
    return configure_latency(s, watched_->fd(), operations, SyscallAttach::automatic);
  });
}

TEST_F(VerifierTest, CacheProgramsLoadWithHeadroom) {
  CacheProbeOptions options;
  options.targets = 2;
  options.usdt_caches = {{0, {"/bin/true", "app", "hit"}, {"/bin/true", "app", "miss"}}};
  check_every_program<cache_bpf>("cache", [&](cache_bpf& s) -> Result<SkippedPrograms> {
    auto setup = configure_cache(s, watched_->fd(), options);
    if (!setup) return setup.error();
    return std::move(setup->skipped);
  });
}

}  // namespace
}  // namespace perfwatch::collector
