// Uprobes at full rate: one thread calls a measured native function N times in a row, bare, under
// perfwatch's latency probes and under the peer, libbpf-tools' funclatency (when installed), in one
// run. Prints how many calls perfwatch measured, the cost each adds per call as the caller sees it
// (the uprobe traps included) and the BPF programs' own run time per call (bpf run-time stats). Some
// hypervisors fire a uprobe only on the first hit per thread (../shared/ENVIRONMENT.md): "measured"
// then reads 1, and the exit status is 3.
//
//   build/bench/uprobe_rate [--calls N]      (as root)
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "collector/latency_probes.h"
#include "collector/watched_map.h"
#include "spawn.h"

extern "C" __attribute__((noinline, used)) int pw_bench_op(int x) {
  asm volatile("" ::: "memory");  // not inlined, not a tail call: the return probe needs the return
  return x + 1;
}

namespace {

using namespace perfwatch;
using Clock = std::chrono::steady_clock;

double ns_per_call(long calls) {
  const auto start = Clock::now();
  int sink = 0;
  for (long i = 0; i < calls; ++i) sink += pw_bench_op(static_cast<int>(i));
  asm volatile("" ::"r"(sink));
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / static_cast<double>(calls);
}

// Run time and run count of the programs, summed.
std::pair<std::uint64_t, std::uint64_t> run_stats(const std::vector<std::uint32_t>& ids) {
  std::uint64_t time = 0, count = 0;
  for (std::uint32_t id : ids) {
    const int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
      time += info.run_time_ns;
      count += info.run_cnt;
    }
    close(fd);
  }
  return {time, count};
}

std::vector<std::uint32_t> all_prog_ids() {
  std::vector<std::uint32_t> ids;
  for (std::uint32_t id = 0; bpf_prog_get_next_id(id, &id) == 0;) ids.push_back(id);
  return ids;
}

struct Row {
  const char* tool;
  double ns_per_call;
  std::uint64_t bpf_ns, bpf_runs;
};

// The same loop under funclatency: started on this binary's function, timed once it prints that it
// traces, its programs being those loaded since it started. Empty when it is not installed.
std::optional<Row> under_funclatency(const std::string& self, long calls) {
  if (access("/usr/sbin/funclatency", X_OK) != 0) return std::nullopt;
  const std::vector<std::uint32_t> before_ids = all_prog_ids();
  // Line-buffered, or its "Tracing" line waits in a pipe buffer until it exits.
  const auto child = bench::spawn({"stdbuf", "-oL", "/usr/sbin/funclatency", "-u", self + ":pw_bench_op"});
  if (!child) return std::nullopt;
  std::FILE* from = child->out;
  const pid_t pid = child->pid;
  char line[512];
  bool tracing = false;
  while (!tracing && std::fgets(line, sizeof line, from)) tracing = std::strncmp(line, "Tracing", 7) == 0;
  std::optional<Row> row;
  if (tracing) {
    const std::set<std::uint32_t> old_ids(before_ids.begin(), before_ids.end());
    std::vector<std::uint32_t> ids;
    for (std::uint32_t id : all_prog_ids())
      if (!old_ids.count(id)) ids.push_back(id);
    const auto before = run_stats(ids);
    const double ns = ns_per_call(calls);
    const auto after = run_stats(ids);
    row = Row{"funclatency", ns, after.first - before.first, after.second - before.second};
  }
  kill(pid, SIGINT);
  while (std::fgets(line, sizeof line, from)) {
  }
  std::fclose(from);
  waitpid(pid, nullptr, 0);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  long calls = 100000;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::atol(argv[i + 1]);
  if (calls <= 0) {
    std::fprintf(stderr, "usage: uprobe_rate [--calls N]\n");
    return 2;
  }
  // Held open: the kernel keeps run-time statistics while this fd lives.
  const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd < 0) {
    std::fprintf(stderr, "bpf_enable_stats: %s (run as root)\n", std::strerror(-stats_fd));
    return 1;
  }
  auto watched = collector::WatchedMap::create(64);
  if (!watched) {
    std::fprintf(stderr, "%s\n", watched.error().message.c_str());
    return 1;
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto probes = collector::LatencyProbes::create(
      (*watched)->fd(),
      {{"op", 0, profile::OperationSource::uprobe, self + ":pw_bench_op", 0, "", true, 100'000'000}});
  if (!probes) {
    std::fprintf(stderr, "latency probes: %s\n", probes.error().message.c_str());
    return 1;
  }
  ns_per_call(calls);  // warm
  const double bare = ns_per_call(calls);

  (*probes)->watch(getpid(), 0);
  if ((*probes)->attached_links() < 2) {
    std::fprintf(stderr, "the entry and return uprobes did not attach\n");
    return 1;
  }
  (*probes)->drain();
  const auto before = run_stats((*probes)->prog_ids());
  const double probed = ns_per_call(calls);
  const auto after = run_stats((*probes)->prog_ids());
  const collector::LatencyDrain drained = (*probes)->drain();
  const std::uint64_t measured = drained.histograms.empty() ? 0 : drained.histograms[0].count;
  (*probes)->unwatch(getpid());
  std::vector<Row> rows{{"none", bare, 0, 0}, {"perfwatch", probed, after.first - before.first, after.second - before.second}};
  if (auto peer = under_funclatency(self, calls)) rows.push_back(*peer);

  std::printf("%ld calls on one thread; perfwatch measured %llu of them\n\n", calls,
              static_cast<unsigned long long>(measured));
  std::printf("| probes | ns/call | added ns/call | BPF runs | BPF ns/call (entry + return) |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const Row& r : rows)
    std::printf("| %s | %.1f | %.1f | %llu | %.1f |\n", r.tool, r.ns_per_call, r.ns_per_call - bare,
                static_cast<unsigned long long>(r.bpf_runs), static_cast<double>(r.bpf_ns) / static_cast<double>(calls));
  close(stats_fd);
  return measured == static_cast<std::uint64_t>(calls) ? 0 : 3;
}
