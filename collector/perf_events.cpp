#include "collector/perf_events.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>

#include "collector/bpf_skeleton.h"

namespace perfwatch::collector {
namespace {

Result<int> parse_cpu(std::string_view text) {
  int cpu = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), cpu);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    return make_error("bad CPU number '" + std::string(text) + "'");
  return cpu;
}

// The kernel refuses (EINVAL, without saying why) a sampling frequency above its limit, which it also
// lowers by itself when sampling interrupts take too long.
std::string frequency_limit(const perf_event_attr& attr, int err) {
  if (err != EINVAL || !attr.freq) return "";
  std::ifstream in("/proc/sys/kernel/perf_event_max_sample_rate");
  std::uint64_t max_rate = 0;
  if (!(in >> max_rate) || attr.sample_freq <= max_rate) return "";
  return " (" + std::to_string(attr.sample_freq) + " Hz is above kernel.perf_event_max_sample_rate, " +
         std::to_string(max_rate) + ")";
}

}  // namespace

Result<std::vector<int>> online_cpus() {
  std::ifstream in("/sys/devices/system/cpu/online");
  std::string line;
  if (!std::getline(in, line)) return make_error("cannot read /sys/devices/system/cpu/online");
  return parse_cpu_list(line);
}

perf_event_attr cpu_clock_attr(std::uint32_t frequency_hz) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq = frequency_hz;
  return attr;
}

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::vector<int> cpus;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view range = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    size_t dash = range.find('-');
    Result<int> first = parse_cpu(range.substr(0, dash));
    if (!first) return first.error();
    Result<int> last = dash == std::string_view::npos ? first : parse_cpu(range.substr(dash + 1));
    if (!last) return last.error();
    if (*last < *first) return make_error("bad CPU range '" + std::string(range) + "'");
    for (int cpu = *first; cpu <= *last; ++cpu) cpus.push_back(cpu);
  }
  if (cpus.empty()) return make_error("empty CPU list");
  return cpus;
}

Result<std::vector<Link>> attach_perf_event_on_cpus(bpf_program* prog, perf_event_attr attr, std::string_view what) {
  Result<std::vector<int>> cpus = online_cpus();
  if (!cpus) return cpus.error();
  attr.size = sizeof(attr);
  std::vector<Link> links;
  for (int cpu : *cpus) {
    const int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      const int err = errno;
      Error e = libbpf_error(std::string(what) + ": perf_event_open on CPU " + std::to_string(cpu), -err);
      e.message += frequency_limit(attr, err);
      return e;
    }
    bpf_link* link = bpf_program__attach_perf_event(prog, fd);
    if (!link) {
      const int err = -errno;
      close(fd);
      return libbpf_error(std::string(what) + ": attach to CPU " + std::to_string(cpu), err);
    }
    links.emplace_back(link);
  }
  return links;
}

}  // namespace perfwatch::collector
