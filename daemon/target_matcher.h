#pragma once
// Decides which configured target (if any) a process belongs to.
#include <cstddef>
#include <optional>
#include <regex>
#include <vector>

#include "config/config.h"
#include "daemon/proc_reader.h"

namespace perfwatch::daemon {

class TargetMatcher {
 public:
  // Regexes were validated by the config parser, so compiling them here does not fail.
  explicit TargetMatcher(const std::vector<config::Target>& targets);

  // The first target, in config order, whose every match key holds; nullopt when none does.
  std::optional<std::size_t> match(const ProcessInfo& process) const;

 private:
  struct Compiled {
    config::Match match;
    std::optional<std::regex> cmdline;
  };
  static bool holds(const Compiled& target, const ProcessInfo& process);
  std::vector<Compiled> targets_;
};

}  // namespace perfwatch::daemon
