#include "target_matcher.h"

#include <re2/re2.h>

#include "common/utf8.h"

namespace perfwatch::daemon {
namespace {

// A cgroup key matches the cgroup itself and everything below it, not "/a/bc" for "/a/b".
bool cgroup_within(const std::string& path, const std::string& prefix) {
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || prefix.ends_with('/') || path[prefix.size()] == '/';
}

// RE2 reads UTF-8, in which '.' never matches a byte outside a valid sequence: such bytes are matched
// as U+FFFD, so "java .*-jar x" still holds for arguments that are not UTF-8.
bool search(const re2::RE2& pattern, const std::string& text) {
  return utf8::valid(text) ? re2::RE2::PartialMatch(text, pattern)
                           : re2::RE2::PartialMatch(utf8::sanitize(text), pattern);
}

}  // namespace

TargetMatcher::TargetMatcher(const std::vector<config::Target>& targets) {
  targets_.reserve(targets.size());
  for (const config::Target& t : targets) {
    Compiled c{t.match, nullptr};
    if (t.match.cmdline) c.cmdline = config::compile_cmdline_pattern(*t.match.cmdline);
    targets_.push_back(std::move(c));
  }
}

bool TargetMatcher::holds(const Compiled& t, const ProcessInfo& p) {
  const config::Match& m = t.match;
  if (m.pid && *m.pid != p.pid) return false;
  if (m.comm && *m.comm != p.comm) return false;
  if (m.exe && *m.exe != p.exe) return false;
  if (m.systemd_unit && *m.systemd_unit != p.systemd_unit) return false;
  if (m.cgroup && !cgroup_within(p.cgroup, *m.cgroup)) return false;
  if (t.cmdline && !search(*t.cmdline, p.cmdline)) return false;
  return true;
}

std::optional<std::size_t> TargetMatcher::match(const ProcessInfo& process) const {
  for (std::size_t i = 0; i < targets_.size(); ++i)
    if (holds(targets_[i], process)) return i;
  return std::nullopt;
}

}  // namespace perfwatch::daemon
