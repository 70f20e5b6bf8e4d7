#pragma once
// perfwatch's configuration: the YAML file read by perfwatchd and the CLI.
// Every error names file:line:column and the key; unknown keys are errors.
#include <array>
#include <cstdint>
#include <memory>
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

namespace re2 {
class RE2;
}

namespace perfwatch::config {

// How a target finds its processes. Every key that is set must hold (logical AND).
struct Match {
  std::optional<std::int32_t> pid;
  std::optional<std::string> comm;          // exact /proc/PID/comm (kernel truncates to 15 bytes)
  std::optional<std::string> exe;           // exact path of /proc/PID/exe
  std::optional<std::string> cmdline;       // RE2 pattern searched in the space-joined argv
  std::optional<std::string> systemd_unit;  // unit name, e.g. "kb-api.service"
  std::optional<std::string> cgroup;        // cgroup path prefix, e.g. "/system.slice/kb-api.service"
};

// Whether a target's samples carry CPython frames: auto detects the interpreter in each process
// (no interpreter: native frames only, silently); on expects one and logs why when it cannot be
// profiled; off never walks Python frames.
enum class PythonMode : std::uint8_t { auto_detect, on, off };

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
  PythonMode python = PythonMode::auto_detect;
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

// The most Python frames recorded per sample (PY_MAX_DEPTH in probes/pystack.h).
inline constexpr std::uint32_t max_python_depth = 128;

struct Sampling {
  std::uint32_t frequency_hz = 99;
  Duration window = std::chrono::seconds(10);
  std::uint32_t python_max_depth = 64;  // Python frames recorded per sample; deeper stacks are truncated
};

struct Dashboard {
  std::string listen = "127.0.0.1:7460";  // HOST:PORT; HOST is IPv4, [IPv6] or a host name
  std::string token_file;  // optional absolute path of a file whose first line is the API's bearer token;
                           // only the path is kept here, the daemon reads the file (mode 0600 or stricter)
  // A listen address other machines can reach needs a token_file, unless this says the profiles may be
  // read by anyone who can reach it.
  bool allow_unauthenticated = false;
  std::uint32_t threads = 8;  // HTTP requests served at once
  std::uint32_t queue = 64;   // connections waiting for a thread before new ones are refused
  Duration request_timeout = std::chrono::seconds(30);  // a request is cut off this long after it is taken
  Duration query_timeout = std::chrono::seconds(20);    // PostgreSQL's statement_timeout for the API's queries
};

// Whether a listen address (HOST:PORT) is reachable only from this machine: 127.0.0.0/8, [::1], localhost.
bool loopback_listen(const std::string& listen);

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

// ---- alerts -------------------------------------------------------------------------------------

// An HTTP header a receiver sends. Its value is in the file only when it is not a secret; secrets
// come from an environment variable or a file, read at start-up and on reload.
struct Header {
  std::string name;
  std::string value;  // a plain value (refused for credential-bearing names such as Authorization)
  std::string env;    // or the environment variable holding it
  std::string file;   // or the absolute path of a file holding it (first line)
};

enum class ReceiverKind { webhook, alertmanager };
enum class PayloadFormat { alertmanager, slack, json };

struct Receiver {
  std::string name;  // unique, [A-Za-z0-9_.-]+
  // webhook: POST one notification per alert group to url, in `format`.
  // alertmanager: push alerts to the Alertmanager at url (its /api/v2/alerts), as Prometheus does.
  ReceiverKind kind = ReceiverKind::webhook;
  std::string url;   // http:// or https://, no credentials in it
  PayloadFormat format = PayloadFormat::alertmanager;
  std::vector<Header> headers;
  Duration timeout = std::chrono::seconds(10);
  bool send_resolved = true;
  // A firing alert is notified again after this long; default 4h (webhook), 1m (alertmanager, whose
  // alerts expire unless they are pushed again).
  std::optional<Duration> repeat_interval;
  Duration backoff_initial = std::chrono::seconds(1);  // first retry after a transport error or 5xx
  Duration backoff_max = std::chrono::minutes(5);      // retries back off exponentially up to this
  std::string ca_file;  // https: PEM file of the CA to trust instead of the system's

  Duration repeat() const {
    return repeat_interval.value_or(kind == ReceiverKind::alertmanager ? Duration(std::chrono::minutes(1))
                                                                       : Duration(std::chrono::hours(4)));
  }
};

// Which per-window latency figure a rule looks at.
enum class LatencyStatistic { p50, p95, p99, max };

// The configured percentile of an operation's window above its tier's threshold for `for`.
struct TierRule {
  bool enabled = true;
  LatencyStatistic percentile = LatencyStatistic::p95;
  Duration for_ = std::chrono::seconds(30);  // also how long it must stay clear to resolve
};

// Multi-window burn rate of the error budget "calls slower than their tier" (Google SRE workbook,
// "Alerting on SLOs"): fires when the burn rate over both the long and the short window reaches factor.
struct BurnWindow {
  Duration long_window;
  Duration short_window;
  double factor = 1;
  std::string severity;
};

struct BurnRateRule {
  bool enabled = true;
  double objective = 0.99;  // fraction of calls that should stay within their tier
  std::vector<BurnWindow> windows = {
      {std::chrono::hours(1), std::chrono::minutes(5), 14.4, "page"},  // 2% of a 30-day budget in 1h
      {std::chrono::hours(6), std::chrono::minutes(30), 6, "page"},    // 5% in 6h
      {std::chrono::hours(72), std::chrono::hours(6), 1, "ticket"},    // 10% in 3 days
  };
  std::uint64_t min_calls = 100;  // calls the long window needs before it can fire
};

struct CacheFloor {
  std::string target;  // "" = every target
  std::string cache;   // "" = every cache of the target
  double floor = 0;
};

// A cache's hit ratio in a window below its floor for `for`.
struct CacheRule {
  std::optional<double> floor;     // for every cache without an entry in floors; unset = none
  std::vector<CacheFloor> floors;  // the first entry that matches a cache wins
  Duration for_ = std::chrono::seconds(30);
  std::uint64_t min_lookups = 100;  // windows with fewer lookups are not judged
};

// Regressions of each operation's latency and each target's per-function CPU share against a
// baseline, found by change-point detection (alerts/changepoint.h).
struct RegressionRule {
  bool enabled = true;
  Duration baseline = std::chrono::hours(24);  // rolling: the series is this much history up to now
  // Pinned instead: the series is this range followed by the last `current` of data.
  std::optional<profile::TimePoint> baseline_from;
  std::optional<profile::TimePoint> baseline_to;
  Duration current = std::chrono::hours(1);
  double min_change = 0.10;      // relative growth a regression must reach
  double max_pvalue = 0.001;     // significance of the change point (Welch's t-test)
  std::uint32_t min_points = 6;  // points on each side of a change point
  Duration interval = std::chrono::minutes(1);       // how often the series are examined
  Duration resolve_after = std::chrono::minutes(15);  // no longer detected this long: resolved
  LatencyStatistic latency_statistic = LatencyStatistic::p95;
  std::uint64_t min_calls = 10;      // a latency point needs this many calls
  std::uint64_t min_samples = 200;   // a CPU point merges consecutive windows up to this many samples
  double min_share = 0.01;           // functions below this share after the change are not reported
  std::uint32_t top_functions = 5;   // functions a CPU regression names
};

struct Alerts {
  // Base of the dashboard links in notifications; default http://<dashboard.listen>.
  std::string external_url;
  Duration evaluation_interval = std::chrono::seconds(10);
  TierRule tier;
  BurnRateRule burn_rate;
  CacheRule cache;
  RegressionRule regression;
  std::vector<Receiver> receivers;
};

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
  Alerts alerts;

  // The operation's threshold: its tier's, or its own.
  Duration threshold_of(const Operation& op) const {
    return op.tier == profile::Tier::none ? op.threshold : tiers[static_cast<std::size_t>(op.tier) - 1];
  }
  // T1..T5 in nanoseconds, as profile::judge grades.
  std::array<std::uint64_t, tier_count> tier_thresholds_ns() const {
    std::array<std::uint64_t, tier_count> ns{};
    for (std::size_t i = 0; i < tier_count; ++i)
      ns[i] = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(tiers[i]).count());
    return ns;
  }
};

// A cmdline pattern compiled as perfwatch matches it: RE2 syntax (no backreferences, no lookaround), which
// runs in time linear in the command line and without recursion; ok() is false, with error() saying why,
// for a pattern RE2 cannot compile.
std::unique_ptr<re2::RE2> compile_cmdline_pattern(const std::string& pattern);

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
