#include "profile.h"

#include <algorithm>
#include <map>

namespace perfwatch::profile {

std::string_view to_string(FrameKind kind) {
  switch (kind) {
    case FrameKind::kernel: return "kernel";
    case FrameKind::native: return "native";
    case FrameKind::python: return "python";
  }
  return "native";
}

bool parse_frame_kind(std::string_view text, FrameKind& out) {
  for (FrameKind k : {FrameKind::kernel, FrameKind::native, FrameKind::python}) {
    if (text == to_string(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

LatencyStats& LatencyStats::operator+=(const LatencyStats& o) {
  probe_calls += o.probe_calls;
  lost_no_entry += o.lost_no_entry;
  lost_unwound += o.lost_unwound;
  lost_map_full += o.lost_map_full;
  statsd_packets += o.statsd_packets;
  statsd_timings += o.statsd_timings;
  statsd_unknown += o.statsd_unknown;
  statsd_ignored += o.statsd_ignored;
  statsd_malformed += o.statsd_malformed;
  statsd_oversized += o.statsd_oversized;
  return *this;
}

std::string_view to_string(OperationSource source) {
  switch (source) {
    case OperationSource::uprobe: return "uprobe";
    case OperationSource::python: return "python";
    case OperationSource::syscall: return "syscall";
    case OperationSource::statsd: return "statsd";
  }
  return "uprobe";
}

bool parse_operation_source(std::string_view text, OperationSource& out) {
  for (auto s : {OperationSource::uprobe, OperationSource::python, OperationSource::syscall, OperationSource::statsd}) {
    if (text == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

std::string_view to_string(CacheKind kind) {
  switch (kind) {
    case CacheKind::page: return "page";
    case CacheKind::llc: return "llc";
    case CacheKind::statsd: return "statsd";
    case CacheKind::usdt: return "usdt";
  }
  return "page";
}

bool parse_cache_kind(std::string_view text, CacheKind& out) {
  for (auto k : {CacheKind::page, CacheKind::llc, CacheKind::statsd, CacheKind::usdt}) {
    if (text == to_string(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

std::uint64_t Profile::total() const {
  std::uint64_t sum = 0;
  for (const Stack& s : stacks) sum += s.count;
  return sum;
}

namespace {
void append_folded_name(std::string& out, const std::string& name) {
  for (char c : name) out.push_back(c == ';' || c == '\n' ? ':' : c);
}
}  // namespace

std::string to_folded(const Profile& profile) {
  std::vector<std::pair<std::string, std::uint64_t>> lines;
  lines.reserve(profile.stacks.size());
  std::map<std::string, std::size_t> index;
  for (const Stack& s : profile.stacks) {
    std::string line;
    for (std::size_t i = 0; i < s.frame_ids.size(); ++i) {
      if (i) line.push_back(';');
      append_folded_name(line, profile.frames[s.frame_ids[i]].name);
    }
    auto [it, fresh] = index.emplace(line, lines.size());
    if (fresh)
      lines.emplace_back(std::move(line), s.count);
    else
      lines[it->second].second += s.count;
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& [stack, count] : lines) {
    out.append(stack).push_back(' ');
    out.append(std::to_string(count)).push_back('\n');
  }
  return out;
}

void merge_identical_stacks(Profile& profile) {
  std::map<std::pair<std::uint32_t, std::vector<std::uint32_t>>, std::size_t> seen;
  std::vector<Stack> merged;
  merged.reserve(profile.stacks.size());
  for (Stack& s : profile.stacks) {
    auto [it, fresh] = seen.emplace(std::make_pair(s.target_index, s.frame_ids), merged.size());
    if (fresh)
      merged.push_back(std::move(s));
    else
      merged[it->second].count += s.count;
  }
  profile.stacks = std::move(merged);
}

}  // namespace perfwatch::profile
