#pragma once
// What the rules read, per window, through interfaces: the PostgreSQL implementations
// (alerts/pg_sources.h) read the stored windows, tests give series with known properties.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/profile.h"
#include "common/result.h"

namespace perfwatch::alerts {

using TimePoint = profile::TimePoint;

// One operation's latency in one window (windows without calls are not stored).
struct LatencyWindow {
  std::string target;
  std::string operation;
  std::string tier;  // "T1".."T5", or "" when the operation has its own threshold
  std::uint64_t threshold_ns = 0;
  TimePoint start;
  TimePoint end;
  std::uint64_t count = 0;
  std::uint64_t slow = 0;  // calls longer than the threshold
  std::uint64_t p50_ns = 0;
  std::uint64_t p95_ns = 0;
  std::uint64_t p99_ns = 0;
  std::uint64_t max_ns = 0;
};

struct CallCounts {
  std::uint64_t count = 0;
  std::uint64_t slow = 0;
};

// One operation's calls over several spans that end at the same time.
struct LatencyTotals {
  std::string target;
  std::string operation;
  std::string tier;
  std::uint64_t threshold_ns = 0;
  std::vector<CallCounts> spans;  // in the order the spans were asked for
};

class LatencySource {
 public:
  virtual ~LatencySource() = default;
  // The host's operation windows starting in (after, until], by start.
  virtual Result<std::vector<LatencyWindow>> windows(const std::string& host, TimePoint after, TimePoint until) = 0;
  // Per operation of the host, its calls in [end - span, end) for each span.
  virtual Result<std::vector<LatencyTotals>> totals(const std::string& host, TimePoint end,
                                                    std::span<const Duration> spans) = 0;
};

// One cache's lookups in one window.
struct CacheWindow {
  std::string target;
  std::string cache;
  TimePoint start;
  TimePoint end;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
};

class CacheSource {
 public:
  virtual ~CacheSource() = default;
  // The host's cache windows starting in (after, until], by start.
  virtual Result<std::vector<CacheWindow>> windows(const std::string& host, TimePoint after, TimePoint until) = 0;
};

// A function as the CPU regression rule tells them apart: kind and name, and the module without what
// changes between builds or samples (the directory of a binary, the line of a Python frame).
struct Function {
  profile::FrameKind kind = profile::FrameKind::native;
  std::string name;
  std::string module;
  auto operator<=>(const Function&) const = default;
};

// Functions by index, each stored once.
class FunctionTable {
 public:
  std::uint32_t intern(Function function) {
    auto [it, fresh] = index_.try_emplace(function, static_cast<std::uint32_t>(functions_.size()));
    if (fresh) functions_.push_back(std::move(function));
    return it->second;
  }
  const Function& operator[](std::uint32_t index) const { return functions_[index]; }
  std::size_t size() const { return functions_.size(); }

 private:
  std::vector<Function> functions_;
  std::map<Function, std::uint32_t> index_;
};

struct FunctionCount {
  std::uint32_t function = 0;  // index into the FunctionTable
  std::uint64_t self = 0;      // samples with the function as the leaf
  std::uint64_t total = 0;     // samples with the function anywhere in the stack (counted once)
};

// One target's samples in one window, per function.
struct CpuWindow {
  TimePoint start;
  TimePoint end;
  std::uint64_t samples = 0;
  std::vector<FunctionCount> functions;  // sorted by function
};

class ProfileSource {
 public:
  virtual ~ProfileSource() = default;
  // The target's windows starting in (after, until], by start, their functions interned in `functions`.
  virtual Result<std::vector<CpuWindow>> windows(const std::string& host, const std::string& target, TimePoint after,
                                                 TimePoint until, FunctionTable& functions) = 0;
};

// A change of a target's executable, libraries or Python files, as stored with its window.
struct Deploy {
  TimePoint at;
  std::string summary;
};

class DeploySource {
 public:
  virtual ~DeploySource() = default;
  // The target's latest deploy in (from, to], if any.
  virtual Result<std::optional<Deploy>> latest(const std::string& host, const std::string& target, TimePoint from,
                                               TimePoint to) = 0;
};

}  // namespace perfwatch::alerts
