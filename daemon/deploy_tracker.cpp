#include "daemon/deploy_tracker.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/log.h"
#include "common/utf8.h"

namespace perfwatch::daemon {
namespace {

using nlohmann::json;

// "build-id:1a2b3c4d5e6f..." -> "1a2b3c4d5e6f" for summaries.
std::string short_identity(const std::string& build_id) { return build_id.substr(9, 12); }

std::string describe(const profile::DeployChange& c) {
  if (c.before.empty()) return c.kind + " " + c.path + " added";
  if (c.after.empty()) return c.kind + " " + c.path + " removed";
  // File identities (device, inode, mtime, size) mean nothing to a reader: say that it changed.
  if (!c.before.starts_with("build-id:") || !c.after.starts_with("build-id:"))
    return c.kind + " " + c.path + " changed";
  return c.kind + " " + c.path + " build-id " + short_identity(c.before) + " -> " + short_identity(c.after);
}

// Paths are any bytes but NUL; JSON holds UTF-8. A path that is not valid UTF-8 is kept as a NUL (which no
// path holds, so nothing else reads as escaped) followed by the path with '%' and each byte outside valid
// UTF-8 written %XX: still readable in the file, and decoded back to the very same bytes.
std::string to_state(const std::string& path) {
  if (utf8::valid(path)) return path;
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out(1, '\0');
  for (std::size_t i = 0; i < path.size();) {
    const std::size_t len = path[i] == '%' ? 0 : utf8::sequence_length(std::string_view(path).substr(i));
    if (len > 0) {
      out.append(path, i, len);
      i += len;
      continue;
    }
    const auto byte = static_cast<unsigned char>(path[i++]);
    out += '%';
    out += hex[byte >> 4];
    out += hex[byte & 15];
  }
  return out;
}

std::string from_state(const std::string& text) {
  if (!text.starts_with('\0')) return text;
  const auto digit = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(digit(text[i + 1]) * 16 + digit(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

json files_to_state(const std::map<std::string, std::string>& files) {
  json out = json::object();
  for (const auto& [path, identity] : files) out[to_state(path)] = identity;
  return out;
}

std::map<std::string, std::string> files_from_state(const json& files) {
  std::map<std::string, std::string> out;
  for (const auto& [path, identity] : files.items()) out[from_state(path)] = identity.get<std::string>();
  return out;
}

void add_differences(const std::map<std::string, std::string>& before, const std::map<std::string, std::string>& after,
                     const std::function<std::string(const std::string&)>& kind_of, bool with_added_removed,
                     std::vector<profile::DeployChange>& out) {
  for (const auto& [path, identity] : after) {
    auto old = before.find(path);
    if (old != before.end() && old->second != identity) out.push_back({kind_of(path), path, old->second, identity});
    if (old == before.end() && with_added_removed) out.push_back({kind_of(path), path, "", identity});
  }
  if (with_added_removed)
    for (const auto& [path, identity] : before)
      if (!after.contains(path)) out.push_back({kind_of(path), path, identity, ""});
}

}  // namespace

DeployTracker::DeployTracker(std::string state_path) : state_path_(std::move(state_path)) {
  if (state_path_.empty() || !std::filesystem::exists(state_path_)) return;
  try {
    std::ifstream in(state_path_);
    const json doc = json::parse(in);
    for (const auto& [target, code] : doc.items())
      known_[target] = {from_state(code.at("executable").get<std::string>()), files_from_state(code.at("binaries")),
                        files_from_state(code.at("python"))};
  } catch (const std::exception& e) {
    log::warn("cannot read what targets ran before; deploys made meanwhile go unnoticed",
              {{"path", state_path_}, {"error", e.what()}});
    known_.clear();
  }
}

std::optional<profile::DeployMarker> DeployTracker::observe(const std::string& target, std::uint32_t target_index,
                                                            const TargetCode& code, profile::TimePoint at) {
  auto [it, fresh] = known_.try_emplace(target, code);
  if (fresh) {
    dirty_ = !code.executable.empty() || !code.python.empty();
    if (code.executable.empty() && code.python.empty()) known_.erase(it);
    return std::nullopt;
  }
  TargetCode& old = it->second;
  const auto binary_kind = [&](const std::string& path) { return path == code.executable ? "executable" : "library"; };
  // Everything that differs; added and removed files only count when something else makes a deploy.
  std::vector<profile::DeployChange> changes;
  const bool read_binaries = !code.executable.empty();
  if (read_binaries) {
    if (code.executable != old.executable && !old.executable.empty()) {
      auto before = old.binaries.find(old.executable);
      auto after = code.binaries.find(code.executable);
      changes.push_back({"executable", code.executable, before == old.binaries.end() ? "" : before->second,
                         after == code.binaries.end() ? "" : after->second});
    }
    add_differences(old.binaries, code.binaries, binary_kind, true, changes);
  }
  add_differences(old.python, code.python, [](const std::string&) { return "python"; }, false, changes);
  const bool deploy = std::any_of(changes.begin(), changes.end(), [](const profile::DeployChange& c) {
    return c.kind == "executable" || (!c.before.empty() && !c.after.empty());
  });

  std::optional<profile::DeployMarker> marker;
  if (deploy) {
    std::stable_sort(changes.begin(), changes.end(), [](const profile::DeployChange& a, const profile::DeployChange& b) {
      return (a.kind == "executable") > (b.kind == "executable");
    });
    std::string summary = describe(changes.front());
    if (changes.size() > 1) summary += " and " + std::to_string(changes.size() - 1) + " more files";
    marker = profile::DeployMarker{target_index, at, std::move(summary), std::move(changes)};
    log::info("deploy noticed", {{"target", target}, {"summary", marker->summary}});
  }
  TargetCode next = old;
  if (read_binaries) {
    next.executable = code.executable;
    next.binaries = code.binaries;
  }
  for (const auto& [path, identity] : code.python) next.python[path] = identity;
  if (next != old) {
    old = std::move(next);
    dirty_ = true;
  }
  return marker;
}

Result<void> DeployTracker::save() {
  if (!dirty_ || state_path_.empty()) return {};
  json doc = json::object();
  for (const auto& [target, code] : known_)
    doc[target] = {{"executable", to_state(code.executable)},
                   {"binaries", files_to_state(code.binaries)},
                   {"python", files_to_state(code.python)}};
  const std::string tmp = state_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    // Everything is UTF-8 by now; replacing rather than throwing keeps a slip from stopping the daemon.
    out << doc.dump(-1, ' ', false, json::error_handler_t::replace);
    if (!out.flush()) return make_error("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, state_path_, ec);
  if (ec) return make_error("cannot rename " + tmp + ": " + ec.message());
  dirty_ = false;
  return {};
}

TargetCode CodeWatcher::code_of(std::size_t target, std::optional<ProcessKey> newest,
                                const std::vector<std::string>& python_paths) {
  if (!newest) {
    seen_.erase(target);
    return {};
  }
  auto it = seen_.find(target);
  if (it == seen_.end() || it->second.process != *newest) {
    auto binaries = reader_.binaries(newest->pid);
    if (!binaries) {
      log::debug("cannot read a process's binaries", {{"pid", newest->pid}, {"error", binaries.error().message}});
      return {};
    }
    it = seen_.insert_or_assign(target, Seen{*newest, std::move(*binaries), {}}).first;
  }
  Seen& seen = it->second;
  for (const std::string& path : python_paths) {
    if (seen.python.contains(path)) continue;
    if (auto identity = reader_.file(newest->pid, path)) seen.python[path] = *identity;
  }
  return {seen.binaries.executable, seen.binaries.binaries, seen.python};
}

std::vector<std::vector<std::string>> python_files(const profile::WindowProfile& window) {
  std::vector<std::set<std::string>> per_target(window.targets.size());
  for (const profile::Stack& s : window.profile.stacks) {
    if (s.target_index >= per_target.size()) continue;
    for (std::uint32_t f : s.frame_ids) {
      if (f >= window.profile.frames.size()) continue;
      const profile::Frame& frame = window.profile.frames[f];
      if (frame.kind != profile::FrameKind::python || frame.module.empty() || frame.module.front() == '<') continue;
      const std::size_t colon = frame.module.rfind(':');
      per_target[s.target_index].insert(colon == std::string::npos ? frame.module : frame.module.substr(0, colon));
    }
  }
  std::vector<std::vector<std::string>> out;
  for (auto& files : per_target) out.emplace_back(files.begin(), files.end());
  return out;
}

}  // namespace perfwatch::daemon
