#include "proc_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

namespace perfwatch::daemon {
namespace {

// What a process controls is read up to a bound: its first max_bytes, the rest left unread.
std::optional<std::string> read_small_file(const std::string& path, std::size_t max_bytes = 64 << 10) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  while (text.size() < max_bytes) {
    const ssize_t n = ::read(fd, buffer, std::min(sizeof buffer, max_bytes - text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

bool is_unit_suffix(std::string_view name) {
  static constexpr std::array<std::string_view, 10> suffixes = {
      ".service", ".scope", ".socket", ".mount", ".swap", ".timer", ".path", ".target", ".device", ".automount"};
  for (std::string_view s : suffixes)
    if (name.size() > s.size() && name.ends_with(s)) return true;
  return false;
}

}  // namespace

std::string parse_cgroup_path(std::string_view text) {
  std::string unified, named_systemd, first;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // "hierarchy-ID:controller-list:path"
    auto c1 = line.find(':');
    if (c1 == std::string::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string_view controllers(line.data() + c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    if (first.empty()) first = path;
    if (line.compare(0, c1, "0") == 0 && controllers.empty()) unified = path;
    if (controllers == "name=systemd") named_systemd = path;
  }
  // In hybrid mode the unified hierarchy may be present but unused ("/"): prefer systemd's tree then.
  if (!unified.empty() && (unified != "/" || named_systemd.empty())) return unified;
  if (!named_systemd.empty()) return named_systemd;
  return first;
}

std::string unit_from_cgroup(std::string_view path) {
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view part = path.substr(pos, next - pos);
    if (!part.ends_with(".slice") && is_unit_suffix(part)) return std::string(part);
    pos = next + 1;
  }
  return {};
}

std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat) {
  // comm is wrapped in parentheses and may contain anything: fields resume after the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  // After ')' come fields 3.. ; start_time is field 22, i.e. the 20th field after comm.
  int field = 2;
  std::size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    std::size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    if (pos < end && ++field == 3 && (rest[pos] == 'Z' || rest[pos] == 'X')) return std::nullopt;  // exited
    if (pos < end && field == 22) {
      std::uint64_t value = 0;
      auto [p, ec] = std::from_chars(rest.data() + pos, rest.data() + end, value);
      if (ec != std::errc{}) return std::nullopt;
      return value;
    }
    pos = end;
  }
  return std::nullopt;
}

std::vector<std::int32_t> ProcFs::list_pids() {
  std::vector<std::int32_t> pids;
  DIR* dir = opendir(root_.c_str());
  if (!dir) return pids;
  while (dirent* entry = readdir(dir)) {
    std::int32_t pid = 0;
    const char* name = entry->d_name;
    auto [p, ec] = std::from_chars(name, name + strlen(name), pid);
    if (ec == std::errc{} && *p == '\0' && pid > 0) pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

std::optional<std::uint64_t> ProcFs::start_time(std::int32_t pid) {
  auto stat = read_small_file(root_ + "/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  return parse_stat_start_time(*stat);
}

Result<ProcessInfo> ProcFs::read(std::int32_t pid) {
  const std::string dir = root_ + "/" + std::to_string(pid);
  ProcessInfo info;
  info.pid = pid;
  auto start = start_time(pid);
  if (!start) return make_error("process " + std::to_string(pid) + " is gone");
  info.start_time = *start;

  auto cmdline = read_small_file(dir + "/cmdline", max_cmdline_bytes);
  auto comm = read_small_file(dir + "/comm");
  auto cgroup = read_small_file(dir + "/cgroup");
  if (!cmdline || !comm || !cgroup) return make_error("process " + std::to_string(pid) + " is gone");
  // Kernel threads have an empty cmdline and no exe; they are never targets.
  if (cmdline->empty()) return make_error("process " + std::to_string(pid) + " is a kernel thread");
  std::string args = trim_newline(*cmdline);
  for (char& c : args)
    if (c == '\0') c = ' ';
  info.cmdline = std::move(args);
  info.comm = trim_newline(*comm);

  std::array<char, 4096> buf{};
  ssize_t n = readlink((dir + "/exe").c_str(), buf.data(), buf.size() - 1);
  if (n > 0) info.exe.assign(buf.data(), static_cast<std::size_t>(n));
  info.cgroup = parse_cgroup_path(*cgroup);
  info.systemd_unit = unit_from_cgroup(info.cgroup);

  // The PID may have been reused while we read: only a stable start time vouches for the data.
  if (start_time(pid) != start) return make_error("process " + std::to_string(pid) + " was replaced while reading");
  return info;
}

}  // namespace perfwatch::daemon
