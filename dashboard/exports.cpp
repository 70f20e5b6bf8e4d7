#include "dashboard/exports.h"

#include <Poco/DeflatingStream.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>
#include <unordered_map>

#include "profile.pb.h"  // generated from dashboard/profile.proto

namespace perfwatch::dashboard {
namespace {

namespace pb = perftools::profiles;

class StringTable {
 public:
  explicit StringTable(pb::Profile& p) : p_(p) { index(""); }
  std::int64_t index(const std::string& s) {
    auto [it, fresh] = ids_.emplace(s, static_cast<std::int64_t>(ids_.size()));
    if (fresh) p_.add_string_table(s);
    return it->second;
  }

 private:
  pb::Profile& p_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

// Python frames name their source as "file:line".
struct Source {
  std::string file;
  std::int64_t line = 0;
};
Source source_of(const profile::Frame& f) {
  if (f.kind != profile::FrameKind::python) return {f.module, 0};
  const std::size_t colon = f.module.rfind(':');
  std::int64_t line = 0;
  if (colon == std::string::npos) return {f.module, 0};
  const char* begin = f.module.data() + colon + 1;
  const char* end = f.module.data() + f.module.size();
  auto [ptr, ec] = std::from_chars(begin, end, line);
  if (ec != std::errc{} || ptr != end) return {f.module, 0};
  return {f.module.substr(0, colon), line};
}

std::int64_t nanos(profile::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string to_pprof(const profile::Profile& profile, const ExportInfo& info) {
  pb::Profile out;
  StringTable strings(out);
  const std::int64_t period = 1'000'000'000 / std::max<std::uint32_t>(info.frequency_hz, 1);

  auto* samples = out.add_sample_type();
  samples->set_type(strings.index("samples"));
  samples->set_unit(strings.index("count"));
  auto* cpu = out.add_sample_type();
  cpu->set_type(strings.index("cpu"));
  cpu->set_unit(strings.index("nanoseconds"));
  out.mutable_period_type()->set_type(strings.index("cpu"));
  out.mutable_period_type()->set_unit(strings.index("nanoseconds"));
  out.set_period(period);
  out.set_time_nanos(nanos(info.range.from));
  out.set_duration_nanos(nanos(info.range.to) - nanos(info.range.from));

  // pprof names the first mapping as the profile's main binary: the native module with most frames.
  auto module_of = [](const profile::Frame& f) { return f.kind == profile::FrameKind::python ? std::string("[python]") : f.module; };
  std::map<std::string, std::size_t> native_frames;
  for (const profile::Frame& f : profile.frames) native_frames[module_of(f)] += f.kind == profile::FrameKind::native;
  std::vector<std::string> modules;
  for (const auto& [module, n] : native_frames) modules.push_back(module);
  std::stable_sort(modules.begin(), modules.end(),
                   [&](const std::string& a, const std::string& b) { return native_frames[a] > native_frames[b]; });
  // Ids start at 1: pprof treats 0 as "none".
  std::map<std::string, std::uint64_t> mapping_ids;
  for (const std::string& module : modules) {
    auto* m = out.add_mapping();
    m->set_id(mapping_ids.size() + 1);
    m->set_filename(strings.index(module));
    m->set_has_functions(true);
    m->set_has_filenames(module == "[python]");
    m->set_has_line_numbers(module == "[python]");
    mapping_ids[module] = m->id();
  }
  for (std::size_t i = 0; i < profile.frames.size(); ++i) {
    const profile::Frame& f = profile.frames[i];
    const Source src = source_of(f);
    auto* fn = out.add_function();
    fn->set_id(i + 1);
    fn->set_name(strings.index(f.name));
    fn->set_system_name(strings.index(f.name));
    fn->set_filename(strings.index(src.file));
    fn->set_start_line(src.line);
    auto* loc = out.add_location();
    loc->set_id(i + 1);
    loc->set_mapping_id(mapping_ids.at(module_of(f)));
    auto* line = loc->add_line();
    line->set_function_id(i + 1);
    line->set_line(src.line);
  }
  for (const profile::Stack& s : profile.stacks) {
    auto* sample = out.add_sample();
    for (auto it = s.frame_ids.rbegin(); it != s.frame_ids.rend(); ++it) sample->add_location_id(*it + 1);
    sample->add_value(static_cast<std::int64_t>(s.count));
    sample->add_value(static_cast<std::int64_t>(s.count) * period);
  }
  return out.SerializeAsString();
}

std::string to_pprof_gzip(const profile::Profile& profile, const ExportInfo& info) {
  std::ostringstream compressed;
  Poco::DeflatingOutputStream gzip(compressed, Poco::DeflatingStreamBuf::STREAM_GZIP);
  gzip << to_pprof(profile, info);
  gzip.close();
  return std::move(compressed).str();
}

nlohmann::json to_speedscope(const profile::Profile& profile, const ExportInfo& info) {
  nlohmann::json frames = nlohmann::json::array();
  for (const profile::Frame& f : profile.frames) {
    const Source src = source_of(f);
    nlohmann::json frame = {{"name", f.name}};
    if (!src.file.empty()) frame["file"] = src.file;
    if (src.line > 0) frame["line"] = src.line;
    frames.push_back(std::move(frame));
  }
  nlohmann::json samples = nlohmann::json::array();
  nlohmann::json weights = nlohmann::json::array();
  std::uint64_t total = 0;
  for (const profile::Stack& s : profile.stacks) {
    samples.push_back(s.frame_ids);
    weights.push_back(s.count);
    total += s.count;
  }
  return {{"$schema", "https://www.speedscope.app/file-format-schema.json"},
          {"exporter", "perfwatch"},
          {"name", info.name},
          {"activeProfileIndex", 0},
          {"shared", {{"frames", std::move(frames)}}},
          {"profiles",
           {{{"type", "sampled"},
             {"name", info.name},
             {"unit", "none"},
             {"startValue", 0},
             {"endValue", total},
             {"samples", std::move(samples)},
             {"weights", std::move(weights)}}}}};
}

}  // namespace perfwatch::dashboard
