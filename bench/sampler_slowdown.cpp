// A watched workload's slowdown under the on-CPU sampler, with nothing but the sampler in the run: a
// CPU-bound Python program times its own loop (CPU seconds and wall seconds), and runs round after
// round with no sampler, with the sampler taking native stacks only, and with it also walking the
// Python frames, at each frequency, in an order that rotates each round. The slowdown of a mode is
// the median over rounds of its time against the same round's run with no sampler (paired, so slow
// drifts of the machine cancel), with the spread of those ratios. bench/python_overhead.py measures
// the same through perfwatchd beside perf record; this one needs neither PostgreSQL nor peers, so it
// also runs on the device machine (bench/device_check.sh).
//
//   build/bench/sampler_slowdown [--python /usr/bin/python3.11] [--rounds 9] [--loops 150] [--hz 99,999]
//                                [--cpu N: pin the workload to CPU N]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collector/oncpu_sampler.h"
#include "collector/python_interpreter.h"
#include "collector/watched_map.h"
#include "spawn.h"

namespace {

using namespace perfwatch;
using namespace std::chrono_literals;

// Sleeps first so that the sampler watches it before the timed loop starts.
constexpr const char* workload = R"(
import sys, time
time.sleep(0.5)
def leaf(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
def middle(n):
    return leaf(n)
def outer(loops):
    for _ in range(loops):
        middle(200000)
cpu, wall = time.process_time(), time.perf_counter()
outer(int(sys.argv[1]))
print(time.process_time() - cpu, time.perf_counter() - wall)
)";

struct Mode {
  std::string name;
  std::uint32_t hz = 0;  // 0: no sampler
  bool python = false;
};

struct Run {
  double cpu_s = 0, wall_s = 0;
  std::uint64_t samples = 0, python_samples = 0;
};

std::optional<Run> run_once(const Mode& mode, const std::string& python, int loops, int cpu) {
  std::unique_ptr<collector::WatchedMap> watched_map;
  std::unique_ptr<collector::OncpuSampler> sampler;
  if (mode.hz) {
    collector::OncpuOptions options;
    options.frequency_hz = mode.hz;
    auto map = collector::WatchedMap::create(64);
    if (!map) {
      std::fprintf(stderr, "%s\n", map.error().message.c_str());
      return std::nullopt;
    }
    watched_map = std::move(*map);
    auto created = collector::OncpuSampler::create(watched_map->fd(), options);
    if (!created) {
      std::fprintf(stderr, "sampler: %s\n", created.error().message.c_str());
      return std::nullopt;
    }
    sampler = std::move(*created);
  }
  const auto child = bench::spawn({python, "-c", workload, std::to_string(loops)}, cpu);
  if (!child) return std::nullopt;
  const pid_t pid = child->pid;
  bool watched = true;
  if (sampler) {
    std::this_thread::sleep_for(200ms);  // the interpreter is loaded and sleeping by now
    watched = watched_map->watch(pid, 1, 0, true).ok();
    if (watched && mode.python) {
      collector::PythonDetector detector;
      auto found = detector.detect(pid);
      if (!found || !found->interpreter) {
        std::fprintf(stderr, "%s: no supported CPython found (%s)\n", python.c_str(),
                     found ? found->unsupported.c_str() : found.error().message.c_str());
        watched = false;
      } else {
        watched = sampler->watch_python(pid, 1, found->interpreter->walker_index, found->interpreter->runtime).ok();
      }
    }
    sampler->drain();
  }
  if (!watched) kill(pid, SIGKILL);
  Run run;
  const bool timed = std::fscanf(child->out, "%lf %lf", &run.cpu_s, &run.wall_s) == 2;
  std::fclose(child->out);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!watched || !timed || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  if (sampler) {
    const collector::DrainResult drained = sampler->drain();
    for (const collector::RawStack& s : drained.stacks) {
      run.samples += s.count;
      if (!s.python.frames.empty()) run.python_samples += s.count;
    }
  }
  return run;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string python = "/usr/bin/python3.11";
  int rounds = 9, loops = 150, cpu = -1;
  std::vector<std::uint32_t> frequencies{99, 999};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--python") python = value;
    else if (flag == "--rounds") rounds = std::atoi(value.c_str());
    else if (flag == "--loops") loops = std::atoi(value.c_str());
    else if (flag == "--cpu") cpu = std::atoi(value.c_str());
    else if (flag == "--hz") {
      frequencies.clear();
      for (std::size_t at = 0; at < value.size();) {
        const std::size_t comma = std::min(value.find(',', at), value.size());
        frequencies.push_back(static_cast<std::uint32_t>(std::atoi(value.substr(at, comma - at).c_str())));
        at = comma + 1;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (rounds < 1 || loops < 1 || frequencies.empty()) return 2;
  std::vector<Mode> modes{{"no sampler"}};
  for (std::uint32_t hz : frequencies) {
    modes.push_back({"native stacks", hz, false});
    modes.push_back({"native + Python", hz, true});
  }

  // runs[mode][round]
  std::vector<std::vector<Run>> runs(modes.size());
  for (int round = 0; round < rounds; ++round)
    for (std::size_t k = 0; k < modes.size(); ++k) {
      const std::size_t m = (k + static_cast<std::size_t>(round)) % modes.size();
      std::optional<Run> r = run_once(modes[m], python, loops, cpu);
      if (!r) {
        std::fprintf(stderr, "the %s run of round %d failed\n", modes[m].name.c_str(), round + 1);
        return 1;
      }
      runs[m].push_back(*r);
    }

  std::printf("%s, %d rounds, %u CPUs%s; the workload's own timing of its loop (median over rounds; the\n"
              "slowdown is the median of each round's ratio to that round's run with no sampler, with its range)\n\n",
              python.c_str(), rounds, std::thread::hardware_concurrency(),
              cpu >= 0 ? (", the workload pinned to CPU " + std::to_string(cpu)).c_str() : "");
  std::printf("| mode | Hz | CPU s | slowdown, CPU (%%) | wall s | slowdown, wall (%%) | samples | with Python frames |\n");
  std::printf("|---|---:|---:|---|---:|---|---:|---:|\n");
  for (std::size_t m = 0; m < modes.size(); ++m) {
    std::vector<double> cpu, wall, cpu_ratio, wall_ratio, samples, python_share;
    for (int r = 0; r < rounds; ++r) {
      const Run& run = runs[m][static_cast<std::size_t>(r)];
      const Run& base = runs[0][static_cast<std::size_t>(r)];
      cpu.push_back(run.cpu_s);
      wall.push_back(run.wall_s);
      cpu_ratio.push_back(100.0 * (run.cpu_s / base.cpu_s - 1));
      wall_ratio.push_back(100.0 * (run.wall_s / base.wall_s - 1));
      samples.push_back(static_cast<double>(run.samples));
      python_share.push_back(run.samples ? 100.0 * static_cast<double>(run.python_samples) / static_cast<double>(run.samples) : 0);
    }
    auto spread = [](const std::vector<double>& v) {
      char text[96];
      std::snprintf(text, sizeof text, "%+.2f (%+.2f to %+.2f)", median(v), *std::min_element(v.begin(), v.end()),
                    *std::max_element(v.begin(), v.end()));
      return std::string(text);
    };
    const bool base = m == 0;
    std::printf("| %s | %s | %.3f | %s | %.3f | %s | %s | %s |\n", modes[m].name.c_str(),
                base ? "-" : std::to_string(modes[m].hz).c_str(), median(cpu), base ? "-" : spread(cpu_ratio).c_str(),
                median(wall), base ? "-" : spread(wall_ratio).c_str(),
                base ? "-" : std::to_string(static_cast<long>(median(samples))).c_str(),
                base ? "-" : (std::to_string(static_cast<int>(median(python_share))) + "%").c_str());
  }
  return 0;
}
