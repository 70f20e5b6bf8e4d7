#pragma once
// Decides which configured target (if any) a process belongs to.
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.h"
#include "daemon/proc_reader.h"

namespace re2 {
class RE2;
}

namespace perfwatch::daemon {

class TargetMatcher {
 public:
  // Patterns were validated by the config parser, so compiling them here does not fail.
  explicit TargetMatcher(const std::vector<config::Target>& targets);

  // The first target, in config order, whose every match key holds; nullopt when none does.
  std::optional<std::size_t> match(const ProcessInfo& process) const;

 private:
  struct Compiled {
    config::Match match;
    // RE2: linear time and no recursion on any command line (every exec on the host is matched).
    std::shared_ptr<const re2::RE2> cmdline;
  };
  static bool holds(const Compiled& target, const ProcessInfo& process);
  std::vector<Compiled> targets_;
};

}  // namespace perfwatch::daemon
