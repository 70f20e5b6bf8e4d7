#pragma once
// Deploy markers: each window, what every target runs (its newest process's executable and shared
// libraries by build-id, and the Python files its samples ran) is compared with what it ran before.
// A new build of the executable or of a library it had mapped, or a changed Python file it had run,
// is a deploy; the marker lists every file that differs. Files seen for the first time are only
// remembered (a plugin loaded late, a module imported late are not deploys), and so is a target's
// first sighting. What each target ran is kept in state_dir across restarts, so a deploy made while
// perfwatchd was down is noticed when it starts.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "collector/code_identity.h"
#include "common/profile.h"
#include "common/result.h"
#include "daemon/process_registry.h"

namespace perfwatch::daemon {

struct TargetCode {
  std::string executable;                      // "" when no process could be read
  std::map<std::string, std::string> binaries;  // path -> identity (collector::ProcessCode)
  std::map<std::string, std::string> python;    // path -> identity
  bool operator==(const TargetCode&) const = default;
};

class DeployTracker {
 public:
  // state_path: a JSON file of what each target ran; "" keeps it in memory only. An unreadable file
  // is logged and ignored (deploys made while perfwatchd was down then go unnoticed).
  explicit DeployTracker(std::string state_path);

  // The marker when the target's code changed in a way that makes a deploy.
  std::optional<profile::DeployMarker> observe(const std::string& target, std::uint32_t target_index,
                                               const TargetCode& code, profile::TimePoint at);
  // Writes the state file when something changed (atomically: temporary file, rename).
  Result<void> save();

 private:
  std::string state_path_;
  std::map<std::string, TargetCode> known_;
  bool dirty_ = false;
};

// Gathers TargetCode for the daemon: reads a process's binaries once (when it becomes a target's
// newest process) and each Python file once per process.
class CodeWatcher {
 public:
  explicit CodeWatcher(collector::CodeReader& reader) : reader_(reader) {}

  // python_paths: the files of the target's Python frames in the window.
  TargetCode code_of(std::size_t target, std::optional<ProcessKey> newest, const std::vector<std::string>& python_paths);

 private:
  struct Seen {
    ProcessKey process;
    collector::ProcessCode binaries;
    std::map<std::string, std::string> python;
  };
  collector::CodeReader& reader_;
  std::map<std::size_t, Seen> seen_;  // by target
};

// The source files of a window's Python frames, per target ("file:line" modules; "<frozen ...>" left out).
std::vector<std::vector<std::string>> python_files(const profile::WindowProfile& window);

}  // namespace perfwatch::daemon
