#include "storage/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/time_text.h"

namespace perfwatch::storage {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// 2 added operation latencies ("ops", "lat"), 3 deploy markers ("deploys"), 4 cache hit rates
// ("caches", "cache"), 5 the probe families' states ("probes"); older files still decode (without what
// came later).
constexpr int format_version = 5;
constexpr int oldest_readable_version = 1;
constexpr const char* suffix = ".window";

std::int64_t to_us(profile::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
profile::TimePoint from_us(std::int64_t us) {
  return profile::TimePoint(std::chrono::duration_cast<profile::Clock::duration>(std::chrono::microseconds(us)));
}

Error errno_error(const std::string& what) { return make_error(what + ": " + std::strerror(errno)); }

Result<void> write_durably(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("spool: create " + tmp);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = errno_error("spool: write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    Error e = errno_error("spool: sync " + tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("spool: rename " + tmp);
  return {};
}

}  // namespace

std::vector<std::uint8_t> encode_window(const profile::WindowProfile& w) {
  json targets = json::array();
  for (const auto& t : w.targets) targets.push_back({t.name, t.pids, t.samples});
  json frames = json::array();
  for (const auto& f : w.profile.frames) frames.push_back({static_cast<int>(f.kind), f.name, f.module});
  json stacks = json::array();
  for (const auto& s : w.profile.stacks) stacks.push_back({s.target_index, s.frame_ids, s.count});
  json ops = json::array();
  for (const auto& o : w.operations) {
    const auto& h = o.histogram;
    ops.push_back({o.target_index, o.name, static_cast<int>(o.source), o.spec, static_cast<int>(o.tier),
                   o.threshold_ns, h.count, h.sum_ns, h.max_ns, h.slow, h.buckets});
  }
  json caches = json::array();
  for (const auto& c : w.caches)
    caches.push_back({c.target_index, c.name, static_cast<int>(c.kind), c.spec, c.lookups, c.misses});
  const auto& l = w.latency;
  json deploys = json::array();
  for (const auto& d : w.deploys) {
    json changes = json::array();
    for (const auto& c : d.changes) changes.push_back({c.kind, c.path, c.before, c.after});
    deploys.push_back({d.target_index, to_us(d.at), d.summary, std::move(changes)});
  }
  json probes = json::array();
  for (const auto& p : w.probes)
    probes.push_back({profile::to_string(p.family), profile::to_string(p.status), p.detail});
  const auto& st = w.stats;
  const auto& cs = w.cache;
  json doc = {{"v", format_version},
              {"probes", std::move(probes)},
              {"caches", std::move(caches)},
              {"cache", {cs.page_cache.measured, cs.page_cache.text, cs.llc.measured, cs.llc.text, cs.host.page_lookups,
                         cs.host.page_added, cs.host.page_write_adds, cs.host.llc_references, cs.host.llc_misses,
                         cs.statsd_counts}},
              {"ops", std::move(ops)},
              {"lat", {l.probe_calls, l.lost_no_entry, l.lost_unwound, l.lost_map_full, l.statsd_packets,
                       l.statsd_timings, l.statsd_unknown, l.statsd_ignored, l.statsd_malformed, l.statsd_oversized}},
              {"host", w.host},
              {"start_us", to_us(w.start)},
              {"end_us", to_us(w.end)},
              {"targets", std::move(targets)},
              {"frames", std::move(frames)},
              {"stacks", std::move(stacks)},
              {"stats", {st.samples, st.lost_stack_collision, st.lost_stack_error, st.lost_map_full, st.lost_unresolved}},
              {"deploys", std::move(deploys)}};
  return json::to_cbor(doc);
}

namespace {

// A spooled file may be cut short or damaged: every value is checked for its type and range, and any
// that does not fit makes the window corrupt (an error), never a malformed window or undefined behaviour.
struct Corrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T integer(const json& value) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(v);
  } else if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    if (v >= 0 || std::is_signed_v<T>)
      if (v >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
          static_cast<std::uint64_t>(v) <= static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        return static_cast<T>(v);
  }
  throw Corrupt("expected an integer from " + std::to_string(std::numeric_limits<T>::min()) + " to " +
                std::to_string(std::numeric_limits<T>::max()));
}

template <typename T>
std::vector<T> integers(const json& values) {
  if (!values.is_array()) throw Corrupt("expected an array");
  std::vector<T> out;
  out.reserve(values.size());
  for (const json& v : values) out.push_back(integer<T>(v));
  return out;
}

std::string text(const json& value) {
  if (!value.is_string()) throw Corrupt("expected a string");
  return value.get<std::string>();
}

bool boolean(const json& value) {
  if (!value.is_boolean()) throw Corrupt("expected a boolean");
  return value.get<bool>();
}

const json& list(const json& value) {
  if (!value.is_array()) throw Corrupt("expected an array");
  return value;
}

// Microseconds from 1970 to 2200, as windows are (and nanoseconds can hold).
profile::TimePoint time(const json& value) {
  const auto us = integer<std::int64_t>(value);
  if (us < 0 || us >= std::chrono::duration_cast<std::chrono::microseconds>(latest_time).count())
    throw Corrupt("a time outside 1970 to 2200");
  return from_us(us);
}

// CBOR nests arrays in arrays without end; nlohmann reads them recursively. The windows' documents are
// four levels deep: deeper input is refused before it can exhaust the stack.
class DepthLimit : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  explicit DepthLimit(json& out) : json_sax_dom_parser(out, false) {}
  bool start_object(std::size_t n) { return ++depth_ <= max_depth && json_sax_dom_parser::start_object(n); }
  bool start_array(std::size_t n) { return ++depth_ <= max_depth && json_sax_dom_parser::start_array(n); }
  bool end_object() { return --depth_, json_sax_dom_parser::end_object(); }
  bool end_array() { return --depth_, json_sax_dom_parser::end_array(); }

 private:
  static constexpr int max_depth = 16;
  int depth_ = 0;
};

profile::WindowProfile decode(const json& doc) {
  const int version = integer<int>(doc.at("v"));
  if (version < oldest_readable_version || version > format_version)
    throw Corrupt("format version " + std::to_string(version) + ", expected " + std::to_string(oldest_readable_version) +
                  " to " + std::to_string(format_version));
  profile::WindowProfile w;
  w.host = text(doc.at("host"));
  w.start = time(doc.at("start_us"));
  w.end = time(doc.at("end_us"));
  for (const json& t : list(doc.at("targets")))
    w.targets.push_back({text(t.at(0)), integers<std::int32_t>(t.at(1)), integer<std::uint64_t>(t.at(2))});
  for (const json& f : list(doc.at("frames"))) {
    const int kind = integer<int>(f.at(0));
    if (kind < 0 || kind > static_cast<int>(profile::FrameKind::python)) throw Corrupt("bad frame kind");
    w.profile.frames.push_back({static_cast<profile::FrameKind>(kind), text(f.at(1)), text(f.at(2))});
  }
  for (const json& s : list(doc.at("stacks"))) {
    profile::Stack stack{integer<std::uint32_t>(s.at(0)), integers<std::uint32_t>(s.at(1)), integer<std::uint64_t>(s.at(2))};
    if (stack.target_index >= w.targets.size()) throw Corrupt("stack refers to a missing target");
    for (std::uint32_t id : stack.frame_ids)
      if (id >= w.profile.frames.size()) throw Corrupt("stack refers to a missing frame");
    w.profile.stacks.push_back(std::move(stack));
  }
  const auto st = integers<std::uint64_t>(doc.at("stats"));
  if (st.size() < 5) throw Corrupt("short stats");
  w.stats = {st[0], st[1], st[2], st[3], st[4]};
  if (version < 2) return w;
  for (const json& o : list(doc.at("ops"))) {
    profile::OperationWindow op;
    op.target_index = integer<std::uint32_t>(o.at(0));
    op.name = text(o.at(1));
    const int source = integer<int>(o.at(2)), tier = integer<int>(o.at(4));
    if (op.target_index >= w.targets.size()) throw Corrupt("operation refers to a missing target");
    if (source < 0 || source > static_cast<int>(profile::OperationSource::statsd)) throw Corrupt("bad operation source");
    if (tier < 0 || tier > 5) throw Corrupt("bad operation tier");
    op.source = static_cast<profile::OperationSource>(source);
    op.spec = text(o.at(3));
    op.tier = static_cast<profile::Tier>(tier);
    op.threshold_ns = integer<std::uint64_t>(o.at(5));
    op.histogram = {integer<std::uint64_t>(o.at(6)), integer<std::uint64_t>(o.at(7)), integer<std::uint64_t>(o.at(8)),
                    integer<std::uint64_t>(o.at(9)), {}};
    for (const json& b : list(o.at(10))) {
      const auto bucket = integer<std::uint32_t>(b.at(0));
      if (bucket >= profile::latency_bucket_count) throw Corrupt("bad latency bucket");
      op.histogram.buckets.emplace_back(bucket, integer<std::uint64_t>(b.at(1)));
    }
    w.operations.push_back(std::move(op));
  }
  const auto l = integers<std::uint64_t>(doc.at("lat"));
  if (l.size() < 10) throw Corrupt("short latency stats");
  w.latency = {l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7], l[8], l[9]};
  if (version < 3) return w;
  for (const json& d : list(doc.at("deploys"))) {
    profile::DeployMarker marker{integer<std::uint32_t>(d.at(0)), time(d.at(1)), text(d.at(2)), {}};
    if (marker.target_index >= w.targets.size()) throw Corrupt("deploy marker refers to a missing target");
    for (const json& c : list(d.at(3)))
      marker.changes.push_back({text(c.at(0)), text(c.at(1)), text(c.at(2)), text(c.at(3))});
    w.deploys.push_back(std::move(marker));
  }
  if (version < 4) return w;
  for (const json& c : list(doc.at("caches"))) {
    profile::CacheWindow cache;
    cache.target_index = integer<std::uint32_t>(c.at(0));
    if (cache.target_index >= w.targets.size()) throw Corrupt("cache refers to a missing target");
    const int kind = integer<int>(c.at(2));
    if (kind < 0 || kind > static_cast<int>(profile::CacheKind::usdt)) throw Corrupt("bad cache kind");
    cache.name = text(c.at(1));
    cache.kind = static_cast<profile::CacheKind>(kind);
    cache.spec = text(c.at(3));
    cache.lookups = integer<std::uint64_t>(c.at(4));
    cache.misses = integer<std::uint64_t>(c.at(5));
    w.caches.push_back(std::move(cache));
  }
  const json& cs = doc.at("cache");
  auto count = [&](std::size_t i) { return integer<std::uint64_t>(cs.at(i)); };
  w.cache = {{boolean(cs.at(0)), text(cs.at(1))},
             {boolean(cs.at(2)), text(cs.at(3))},
             {count(4), count(5), count(6), count(7), count(8)},
             count(9)};
  if (version < 5) return w;
  for (const json& p : list(doc.at("probes"))) {
    profile::ProbeState state;
    if (!profile::parse_probe_family(text(p.at(0)), state.family)) throw Corrupt("bad probe family");
    if (!profile::parse_probe_status(text(p.at(1)), state.status)) throw Corrupt("bad probe status");
    state.detail = text(p.at(2));
    w.probes.push_back(std::move(state));
  }
  return w;
}

}  // namespace

Result<profile::WindowProfile> decode_window(const std::vector<std::uint8_t>& bytes) {
  try {
    json doc;
    DepthLimit reader(doc);
    if (!json::sax_parse(bytes, &reader, json::input_format_t::cbor) || reader.is_errored() || !doc.is_object())
      return make_error("corrupt spooled window: not a CBOR map of at most 16 levels");
    return decode(doc);
  } catch (const json::exception& e) {
    return make_error(std::string("corrupt spooled window: ") + e.what());
  } catch (const Corrupt& e) {
    return make_error(std::string("corrupt spooled window: ") + e.what());
  }
}

Result<Spool> Spool::open(std::string dir, std::uint64_t max_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("spool: cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  Spool spool(std::move(dir), max_bytes);
  for (const auto& entry : fs::directory_iterator(spool.dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp")) {
      fs::remove(entry.path(), ec);  // a write cut short by a crash: never renamed, never complete
      continue;
    }
    if (!entry.is_regular_file() || !name.ends_with(suffix)) continue;
    const long long us = std::strtoll(name.c_str(), nullptr, 10);
    const bool in_range = us >= 0 && us < std::chrono::duration_cast<std::chrono::microseconds>(latest_time).count();
    spool.entries_.push_back({entry.path().string(), static_cast<std::uint64_t>(entry.file_size(ec)),
                              in_range ? from_us(us) : profile::TimePoint{}});
    spool.bytes_ += spool.entries_.back().bytes;
  }
  if (ec) return make_error("spool: cannot list " + spool.dir_ + ": " + ec.message());
  std::sort(spool.entries_.begin(), spool.entries_.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  if (!spool.entries_.empty())
    log::info("spooled windows waiting for the database", {{"windows", spool.entries_.size()}, {"bytes", spool.bytes_}});
  return spool;
}

Result<void> Spool::push(const profile::WindowProfile& window) {
  const std::vector<std::uint8_t> bytes = encode_window(window);
  // Zero-padded so that name order is time order; the sequence keeps equal starts apart.
  char name[96];
  std::snprintf(name, sizeof name, "%020lld-%06llu%s", static_cast<long long>(to_us(window.start)),
                static_cast<unsigned long long>(sequence_++ % 1000000), suffix);
  const std::string path = dir_ + "/" + name;
  if (Result<void> r = write_durably(path, bytes); !r) return r;
  Entry entry{path, bytes.size(), window.start};
  entries_.insert(std::upper_bound(entries_.begin(), entries_.end(), entry,
                                   [](const Entry& a, const Entry& b) { return a.path < b.path; }),
                  entry);
  bytes_ += entry.bytes;
  while (bytes_ > max_bytes_ && entries_.size() > 1) {
    Entry victim = entries_.front().path == path ? entries_[1] : entries_.front();
    log::warn("spool full; dropping the oldest window", {{"path", victim.path}, {"spool_bytes", bytes_}});
    remove(victim);
    ++dropped_;
  }
  return {};
}

std::optional<Spool::Entry> Spool::oldest() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front();
}

Result<profile::WindowProfile> Spool::load(const Entry& entry) const {
  std::ifstream in(entry.path, std::ios::binary);
  if (!in) return make_error("spool: cannot open " + entry.path);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_window(bytes);
}

void Spool::forget(const Entry& entry) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.path == entry.path; });
  if (it == entries_.end()) return;
  bytes_ -= it->bytes;
  entries_.erase(it);
}

void Spool::remove(const Entry& entry) {
  forget(entry);
  std::error_code ec;
  fs::remove(entry.path, ec);
}

void Spool::quarantine(const Entry& entry) {
  forget(entry);
  std::error_code ec;
  const fs::path failed = fs::path(dir_) / "failed";
  fs::create_directories(failed, ec);
  fs::rename(entry.path, failed / fs::path(entry.path).filename(), ec);
  if (ec) fs::remove(entry.path, ec);
}

}  // namespace perfwatch::storage
