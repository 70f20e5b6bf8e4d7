#pragma once
// perfwatch's configuration: the YAML file read by perfwatchd and the CLI.
// Every error names file:line:column and the key; unknown keys are errors.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/latency.h"
#include "common/log.h"
#include "common/profile.h"
#include "common/result.h"
#include "common/usdt.h"

namespace perfwatch::config {

// How a target finds its processes. Every key that is set must hold (logical AND).
struct Match {
  std::optional<std::int32_t> pid;
  std::optional<std::string> comm;          // exact /proc/PID/comm (kernel truncates to 15 bytes)
  std::optional<std::string> exe;           // exact path of /proc/PID/exe
  std::optional<std::string> cmdline;       // ECMAScript regex searched in the space-joined argv
  std::optional<std::string> systemd_unit;  // unit name, e.g. "kb-api.service"
  std::optional<std::string> cgroup;        // cgroup path prefix, e.g. "/system.slice/kb-api.service"
};

// File I/O system calls a `syscall` operation can time (the kernel's names).
inline constexpr std::string_view syscall_names[] = {"read",  "pread64", "readv",    "preadv", "preadv2",
                                                     "write", "pwrite64", "writev",  "pwritev", "pwritev2",
                                                     "openat", "fsync",   "fdatasync"};

// One measured operation of a target: its latency per call, graded against a tier or its own threshold.
struct Operation {
  std::string name;  // unique within the target, [A-Za-z0-9_.-]+
  profile::Tier tier = profile::Tier::none;  // none: `threshold` applies
  Duration threshold{0};
  profile::OperationSource source = profile::OperationSource::uprobe;
  // uprobe: "BINARY:SYMBOL"; python: "module.qualname" or "module:qualname"; syscall: a name from
  // syscall_names; statsd: the metric name.
  std::string spec;
  std::string path_prefix;    // syscall: only files at or below this absolute path ("" = any)
  bool regular_only = true;   // syscall: only regular files
};

// An application cache of a target: its hit ratio per window, from a pair of StatsD counters the
// application sends (`NAME:1|c`) or a pair of USDT probes it fires, one on a hit and one on a miss.
struct AppCache {
  std::string name;  // unique within the target, [A-Za-z0-9_.-]+, not page_cache or llc
  profile::CacheKind kind = profile::CacheKind::statsd;  // statsd or usdt
  std::string hits;    // statsd: the hit counter's metric name
  std::string misses;  // statsd: the miss counter's
  UsdtProbe hit_usdt;  // usdt: "BINARY:PROVIDER:NAME"
  UsdtProbe miss_usdt;
  // What counts it, as stored beside its hit rates.
  std::string spec() const {
    return kind == profile::CacheKind::statsd ? "hits " + hits + ", misses " + misses
                                              : "hits " + hit_usdt.text() + ", misses " + miss_usdt.text();
  }
};

struct Target {
  std::string name;  // unique, [A-Za-z0-9_.-]+; labels the target's profiles in storage and the dashboard
  Match match;
  bool profile = true;
  std::vector<Operation> operations;
  std::vector<AppCache> caches;
};

struct Storage {
  std::string postgres;       // libpq URI or key=value conninfo, never with a password; empty = embedded
                              // cluster under state_dir
  std::string password_file;  // optional absolute path of a file holding the password (else PGPASSWORD /
                              // ~/.pgpass); only the path is kept here, the storage layer reads it
  Duration retention = std::chrono::hours(24 * 14);
  std::uint64_t spool_max_bytes = 256ull << 20;  // windows held while the database is unreachable
};

struct Sampling {
  std::uint32_t frequency_hz = 99;
  Duration window = std::chrono::seconds(10);
};

struct Dashboard {
  std::string listen = "127.0.0.1:7460";  // HOST:PORT; HOST is IPv4, [IPv6] or a host name
  std::string token_file;  // optional absolute path of a file whose first line is the API's bearer token;
                           // only the path is kept here, the daemon reads the file
  std::uint32_t threads = 8;  // HTTP requests served at once
  std::uint32_t queue = 64;   // connections waiting for a thread before new ones are refused
};

// The StatsD listener, started when an operation has a `statsd` source.
struct Statsd {
  std::string listen = "127.0.0.1:8125";  // HOST:PORT, UDP
  std::uint64_t receive_buffer_bytes = 8ull << 20;  // socket receive buffer: absorbs bursts
  std::uint64_t max_packet_bytes = 8192;            // longer datagrams are counted as oversized and dropped
};

// Kernel and hardware caches, measured for every target.
struct CacheSettings {
  bool page_cache = true;  // page cache lookups and misses (filemap tracepoints)
  bool llc = true;         // last-level CPU cache references and misses (hardware perf events)
  std::uint64_t llc_sample_period = 100;  // one sample per this many LLC events
};

inline constexpr std::size_t tier_count = 5;
// All targets' operations together: the probes' per-window histogram arrays are sized for this many.
inline constexpr std::size_t max_operations = 256;

struct Config {
  std::string source;  // the file it came from
  std::string state_dir = "/var/lib/perfwatch";
  std::string host;    // defaults to the machine's hostname
  log::Level log_level = log::Level::info;
  Storage storage;
  Sampling sampling;
  Dashboard dashboard;
  Statsd statsd;
  CacheSettings cache;
  // T1..T5 thresholds; defaults from the performance guide.
  std::array<Duration, tier_count> tiers = {std::chrono::milliseconds(100), std::chrono::milliseconds(500),
                                            std::chrono::seconds(2), std::chrono::seconds(5),
                                            std::chrono::seconds(10)};
  std::vector<Target> targets;

  // The operation's threshold: its tier's, or its own.
  Duration threshold_of(const Operation& op) const {
    return op.tier == profile::Tier::none ? op.threshold : tiers[static_cast<std::size_t>(op.tier) - 1];
  }
};

// "BINARY:SYMBOL" split at the first ':' (mangled symbols have none).
std::pair<std::string, std::string> split_uprobe(const std::string& spec);

// Parses and validates. On failure the error message holds one line per problem,
// each "FILE:LINE:COLUMN: KEY: what is wrong".
Result<Config> load_file(const std::string& path);
Result<Config> parse(std::string_view yaml_text, const std::string& source_name);

// Every key the parser accepts, as paths such as "storage.retention" or "targets[].match.cmdline"
// (sections included), so tests can check that the documented example covers them all.
std::vector<std::string> known_key_paths();

}  // namespace perfwatch::config
