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
constexpr const char* failed_dir = "failed";

std::int64_t to_us(profile::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
profile::TimePoint from_us(std::int64_t us) {
  return profile::TimePoint(std::chrono::duration_cast<profile::Clock::duration>(std::chrono::microseconds(us)));
}

Error errno_error(const std::string& what) { return make_error(what + ": " + std::strerror(errno)); }

class SystemFileOps final : public FileOps {
 public:
  int open(const std::string& path, int flags, mode_t mode) override { return ::open(path.c_str(), flags, mode); }
  ssize_t write(int fd, const void* data, std::size_t size) override { return ::write(fd, data, size); }
  int fsync(int fd) override { return ::fsync(fd); }
  int close(int fd) override { return ::close(fd); }
  int rename(const std::string& from, const std::string& to) override { return ::rename(from.c_str(), to.c_str()); }
};

// A rename or a new file is durable only once its directory is synced too.
Result<void> sync_directory(FileOps& files, const std::string& dir) {
  const int fd = files.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return errno_error("spool: open " + dir);
  const bool synced = files.fsync(fd) == 0;
  Error e = errno_error("spool: sync " + dir);
  files.close(fd);
  if (!synced) return e;
  return {};
}

void sync_directory_or_warn(FileOps& files, const std::string& dir) {
  if (Result<void> r = sync_directory(files, dir); !r)
    log::warn("spool: a change may not survive a power loss", {{"error", r.error().message}});
}

Result<void> write_durably(FileOps& files, const std::string& dir, const std::string& path,
                           const std::vector<std::uint8_t>& bytes) {
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  int fd = files.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("spool: create " + tmp);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = files.write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      Error e = errno_error("spool: write " + tmp);
      files.close(fd);
      fs::remove(tmp, ec);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  // The data first: a rename that reached the disk before the data would publish an empty file.
  const bool synced = files.fsync(fd) == 0;
  Error e = errno_error("spool: sync " + tmp);
  if (files.close(fd) != 0 && synced) e = errno_error("spool: close " + tmp);
  else if (synced) {
    if (files.rename(tmp, path) == 0) {
      // The file is in place; without this its name may not survive a power loss.
      sync_directory_or_warn(files, dir);
      return {};
    }
    e = errno_error("spool: rename " + tmp);
  }
  fs::remove(tmp, ec);
  return e;
}

// The name is the window's start in microseconds; a foreign or damaged name gives the epoch.
Spool::Entry entry_of(const fs::path& path, std::uint64_t bytes) {
  const long long us = std::strtoll(path.filename().c_str(), nullptr, 10);
  const bool in_range = us >= 0 && us < std::chrono::duration_cast<std::chrono::microseconds>(latest_time).count();
  return {path.string(), bytes, in_range ? from_us(us) : profile::TimePoint{}};
}

bool by_path(const Spool::Entry& a, const Spool::Entry& b) { return a.path < b.path; }

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

FileOps& system_file_ops() {
  static SystemFileOps ops;
  return ops;
}

Result<Spool> Spool::open(std::string dir, std::uint64_t max_bytes, FileOps& files) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("spool: cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  Spool spool(std::move(dir), max_bytes, files);
  // Set-aside windows back in line first, so that the listing below indexes them.
  const fs::path failed = fs::path(spool.dir_) / failed_dir;
  std::size_t requeued = 0;
  for (const auto& entry : fs::directory_iterator(failed, ec)) {
    if (!entry.is_regular_file() || !entry.path().filename().string().ends_with(suffix)) continue;
    if (files.rename(entry.path().string(), (fs::path(spool.dir_) / entry.path().filename()).string()) == 0)
      ++requeued;
  }
  ec.clear();  // no failed/ is the usual case
  if (requeued > 0) {
    sync_directory_or_warn(files, failed.string());
    sync_directory_or_warn(files, spool.dir_);
    log::info("windows set aside by an earlier run are tried again", {{"windows", requeued}});
  }
  for (const auto& entry : fs::directory_iterator(spool.dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp")) {
      fs::remove(entry.path(), ec);  // a write cut short by a crash: never renamed, never complete
      continue;
    }
    if (!entry.is_regular_file() || !name.ends_with(suffix)) continue;
    spool.entries_.push_back(entry_of(entry.path(), static_cast<std::uint64_t>(entry.file_size(ec))));
    spool.bytes_ += spool.entries_.back().bytes;
  }
  if (ec) return make_error("spool: cannot list " + spool.dir_ + ": " + ec.message());
  std::sort(spool.entries_.begin(), spool.entries_.end(), by_path);
  if (!spool.entries_.empty())
    log::info("spooled windows waiting for the database", {{"windows", spool.entries_.size()}, {"bytes", spool.bytes_}});
  return spool;
}

Result<Spool::Entry> Spool::push(const profile::WindowProfile& window) {
  const std::vector<std::uint8_t> bytes = encode_window(window);
  // Zero-padded so that name order is time order; the sequence keeps equal starts apart.
  char name[96];
  std::snprintf(name, sizeof name, "%020lld-%06llu%s", static_cast<long long>(to_us(window.start)),
                static_cast<unsigned long long>(sequence_++ % 1000000), suffix);
  const std::string path = dir_ + "/" + name;
  if (Result<void> r = write_durably(*files_, dir_, path, bytes); !r) return r.error();
  Entry entry{path, bytes.size(), window.start};
  entries_.insert(std::upper_bound(entries_.begin(), entries_.end(), entry, by_path), entry);
  bytes_ += entry.bytes;
  drop_past_bound(path);
  return entry;
}

void Spool::drop_past_bound(const std::string& keep) {
  while (bytes_ + quarantine_bytes_ > max_bytes_) {
    // Set-aside windows go first: the database refused them once already.
    if (!quarantined_.empty()) {
      const Entry victim = quarantined_.front();
      log::warn("spool full; dropping the oldest window set aside", {{"path", victim.path}});
      quarantined_.erase(quarantined_.begin());
      quarantine_bytes_ -= victim.bytes;
      std::error_code ec;
      fs::remove(victim.path, ec);
    } else if (entries_.size() > 1) {
      const Entry victim = entries_.front().path == keep ? entries_[1] : entries_.front();
      log::warn("spool full; dropping the oldest window", {{"path", victim.path}, {"spool_bytes", bytes_}});
      remove(victim);
    } else {
      return;
    }
    ++dropped_;
  }
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
  const fs::path failed = fs::path(dir_) / failed_dir;
  if (fs::create_directory(failed, ec)) sync_directory_or_warn(*files_, dir_);
  const fs::path to = failed / fs::path(entry.path).filename();
  if (files_->rename(entry.path, to.string()) != 0) {
    log::error("spool: cannot set a window aside; it is lost", {{"path", entry.path}, {"error", std::strerror(errno)}});
    fs::remove(entry.path, ec);
    ++dropped_;
    return;
  }
  sync_directory_or_warn(*files_, failed.string());
  sync_directory_or_warn(*files_, dir_);
  quarantined_.push_back({to.string(), entry.bytes, entry.start});
  quarantine_bytes_ += entry.bytes;
}

}  // namespace perfwatch::storage
