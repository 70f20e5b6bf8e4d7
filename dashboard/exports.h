#pragma once
// A merged profile in the formats other tools read: pprof (gzip-compressed profile.proto, for
// `go tool pprof`), speedscope's JSON file format, and (in common/profile.h) folded stacks.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/profile.h"
#include "storage/query.h"

namespace perfwatch::dashboard {

struct ExportInfo {
  std::string name;               // the target; names the speedscope profile
  storage::TimeRange range;       // time_nanos / duration_nanos
  std::uint32_t frequency_hz = 99;  // sampling period, so pprof can show CPU time beside counts
};

// Sample types: samples/count (default) and cpu/nanoseconds (count times the sampling period).
// One mapping per module, one function and location per distinct frame; kernel frames come from the
// "[kernel]" mapping, Python frames carry their file and line.
std::string to_pprof_gzip(const profile::Profile& profile, const ExportInfo& info);
// The uncompressed protobuf, for tests that decode it.
std::string to_pprof(const profile::Profile& profile, const ExportInfo& info);

// speedscope's file format (https://www.speedscope.app/file-format-schema.json): one "sampled"
// profile whose samples are root-first frame index lists weighted by their counts.
nlohmann::json to_speedscope(const profile::Profile& profile, const ExportInfo& info);

}  // namespace perfwatch::dashboard
