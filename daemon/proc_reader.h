#pragma once
// Reading what target matching needs about a process from /proc. Behind an interface so the
// matching and registry logic can be unit-tested without real processes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace perfwatch::daemon {

// The most read of /proc/PID/cmdline (one argument may be 128 KiB): targets match the first this many bytes.
inline constexpr std::size_t max_cmdline_bytes = 128 << 10;

struct ProcessInfo {
  std::int32_t pid = 0;
  std::uint64_t start_time = 0;  // /proc/PID/stat field 22: tells a reused PID apart
  std::string comm;
  std::string exe;      // target of /proc/PID/exe; "" for kernel threads or when unreadable
  std::string cmdline;  // argv joined with spaces
  std::string cgroup;   // the process's cgroup path ("/system.slice/kb-api.service")
  std::string systemd_unit;  // derived from cgroup, "" when not in a unit
};

class ProcSource {
 public:
  virtual ~ProcSource() = default;
  virtual std::vector<std::int32_t> list_pids() = 0;
  // Fails when the process is gone (or turns out to be a kernel thread); callers treat that as a race.
  virtual Result<ProcessInfo> read(std::int32_t pid) = 0;
  // Cheap identity check for a PID: its start time, or nullopt when it is gone (a zombie is: it keeps
  // its PID only until it is reaped).
  virtual std::optional<std::uint64_t> start_time(std::int32_t pid) = 0;
};

class ProcFs final : public ProcSource {
 public:
  explicit ProcFs(std::string root = "/proc") : root_(std::move(root)) {}
  std::vector<std::int32_t> list_pids() override;
  Result<ProcessInfo> read(std::int32_t pid) override;
  std::optional<std::uint64_t> start_time(std::int32_t pid) override;

 private:
  std::string root_;
};

// Picks the cgroup path from /proc/PID/cgroup text: the unified (v2) hierarchy when it is in use,
// else systemd's named v1 hierarchy (hybrid set-ups), else the first line.
std::string parse_cgroup_path(std::string_view proc_cgroup_text);
// The systemd unit a cgroup path belongs to: the first path component with a unit suffix other
// than ".slice" ("/system.slice/kb-api.service/x" -> "kb-api.service"); "" when none.
std::string unit_from_cgroup(std::string_view cgroup_path);
// Field 22 of /proc/PID/stat; comm (field 2) may contain spaces and parentheses. nullopt for a
// process that has exited (state Z or X).
std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat_text);

}  // namespace perfwatch::daemon
