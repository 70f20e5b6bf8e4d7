#include "daemon/cli.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/duration.h"
#include "common/flame_tree.h"
#include "config/config.h"
#include "daemon/cli_time.h"
#include "daemon/latency_json.h"
#include "storage/embedded_postgres.h"
#include "storage/query_json.h"

namespace perfwatch::cli {
namespace {

using daemon::format_time;
using daemon::parse_time;

// "--key value" or "--key=value"; advances i past what it consumed.
std::optional<std::string> take_value(std::span<const std::string> args, std::size_t& i, std::string_view key,
                                      std::optional<Error>& error) {
  const std::string& arg = args[i];
  if (arg == key) {
    if (i + 1 >= args.size()) {
      error = make_error(std::string(key) + " needs a value");
      return std::nullopt;
    }
    return args[++i];
  }
  if (arg.starts_with(std::string(key) + "=")) return arg.substr(key.size() + 1);
  return std::nullopt;
}

// A target may match thousands of short-lived processes in a window: the table shows a few of them and
// how many there are (--format json lists them all).
std::string pids_cell(const std::vector<std::int32_t>& pids) {
  constexpr std::size_t shown = 3;
  if (pids.empty()) return "-";
  std::string out;
  for (std::size_t i = 0; i < pids.size() && i < shown; ++i) out += (i ? "," : "") + std::to_string(pids[i]);
  if (pids.size() > shown + 1) return out + ",... (" + std::to_string(pids.size()) + ")";
  if (pids.size() == shown + 1) out += "," + std::to_string(pids.back());
  return out;
}

struct Context {
  config::Config config;
  std::string host;  // "" = every host
  std::unique_ptr<storage::Query> query;
};

Result<Context> open_context(const Options& options) {
  Result<config::Config> cfg = config::load_file(options.config_path);
  if (!cfg) return cfg.error();
  Context ctx{std::move(*cfg), "", nullptr};
  ctx.host = options.all_hosts ? "" : options.host.value_or(ctx.config.host);
  std::string uri = ctx.config.storage.postgres;
  if (uri.empty()) {
    Result<std::string> embedded = storage::embedded_uri(ctx.config.state_dir);
    if (!embedded) return embedded.error();
    uri = *embedded;
  }
  auto query = storage::Query::connect({uri, ctx.config.storage.password_file});
  if (!query) return query.error();
  ctx.query = std::move(*query);
  return ctx;
}

// Each host's probe families as of its newest window: what measures, and why what does not.
void print_probes(const std::vector<storage::HostProbes>& hosts, std::FILE* out) {
  for (const storage::HostProbes& h : hosts) {
    std::fprintf(out, "\nprobes of %s (window ending %s):\n", h.host.c_str(), format_time(h.window_end).c_str());
    for (const profile::ProbeState& p : h.probes)
      std::fprintf(out, "  %-16s %s\n", std::string(profile::to_string(p.family)).c_str(), p.text().c_str());
  }
}

// The target's configured operations without a stored window in range, as rows without calls, so that
// an operation nothing measures is listed rather than missing.
void add_idle_operations(const Options& options, const Context& ctx, std::vector<storage::OperationLatency>& ops) {
  if (ctx.host.empty()) return;  // the config describes this host only
  for (const config::Target& t : ctx.config.targets) {
    if (t.name != options.target) continue;
    for (const config::Operation& op : t.operations) {
      if (!options.operation.empty() && op.name != options.operation) continue;
      if (std::any_of(ops.begin(), ops.end(), [&](const auto& o) { return o.name == op.name; })) continue;
      storage::OperationLatency idle;
      idle.target = t.name;
      idle.name = op.name;
      idle.source = std::string(profile::to_string(op.source));
      idle.spec = op.spec;
      idle.tier = op.tier;
      idle.threshold_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(ctx.config.threshold_of(op)).count());
      ops.push_back(std::move(idle));
    }
  }
}

int list_targets(const Options& options, Context& ctx, std::FILE* out, std::FILE* err) {
  auto found = ctx.query->targets(ctx.host, options.range);
  if (!found) {
    std::fprintf(err, "perfwatch: %s\n", found.error().message.c_str());
    return 1;
  }
  std::vector<storage::TargetSummary> rows = std::move(*found);
  // Configured targets of this host show even before their first sample.
  if (!ctx.host.empty())
    for (const config::Target& t : ctx.config.targets)
      if (std::none_of(rows.begin(), rows.end(), [&](const auto& r) { return r.host == ctx.host && r.name == t.name; }))
        rows.push_back({ctx.host, t.name, {}, 0, 0, std::nullopt});

  auto probes = ctx.query->probe_states(ctx.host, options.range);
  if (!probes) {
    std::fprintf(err, "perfwatch: %s\n", probes.error().message.c_str());
    return 1;
  }
  if (options.format == "json") {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& r : rows)
      targets.push_back({{"host", r.host},
                         {"name", r.name},
                         {"pids", r.pids},
                         {"samples", r.samples},
                         {"windows", r.windows},
                         {"last_window_end", r.last_window_end ? nlohmann::json(format_time(*r.last_window_end)) : nullptr}});
    nlohmann::json hosts = nlohmann::json::array();
    for (const storage::HostProbes& h : *probes) hosts.push_back(storage::to_json(h));
    nlohmann::json doc = {{"from", format_time(options.range.from)},
                          {"to", format_time(options.range.to)},
                          {"targets", std::move(targets)},
                          {"hosts", std::move(hosts)}};
    std::fprintf(out, "%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::size_t name_width = 6, host_width = 4, pid_width = 4;
  for (const auto& r : rows) {
    name_width = std::max(name_width, r.name.size());
    host_width = std::max(host_width, r.host.size());
    pid_width = std::max(pid_width, pids_cell(r.pids).size());
  }
  const int nw = static_cast<int>(name_width), hw = static_cast<int>(host_width), pw = static_cast<int>(pid_width);
  std::fprintf(out, "%-*s  %-*s  %-*s  %10s  %s\n", nw, "TARGET", hw, "HOST", pw, "PIDS", "SAMPLES", "LAST WINDOW");
  for (const auto& r : rows)
    std::fprintf(out, "%-*s  %-*s  %-*s  %10llu  %s\n", nw, r.name.c_str(), hw, r.host.c_str(), pw,
                 pids_cell(r.pids).c_str(), static_cast<unsigned long long>(r.samples),
                 r.last_window_end ? format_time(*r.last_window_end).c_str() : "-");
  print_probes(*probes, out);
  return 0;
}

int print_flame(const Options& options, Context& ctx, std::FILE* out, std::FILE* err) {
  auto profile = ctx.query->profile(ctx.host, options.target, options.range);
  if (!profile) {
    std::fprintf(err, "perfwatch: %s\n", profile.error().message.c_str());
    return 1;
  }
  if (profile->stacks.empty())
    std::fprintf(err, "perfwatch: no samples for target '%s' between %s and %s\n", options.target.c_str(),
                 format_time(options.range.from).c_str(), format_time(options.range.to).c_str());
  if (auto stats = ctx.query->sampler_stats(ctx.host, options.range)) {
    const std::uint64_t lost = stats->lost_stack_collision + stats->lost_stack_error + stats->lost_map_full +
                               stats->lost_unresolved;
    if (lost > 0)
      std::fprintf(err, "perfwatch: note: %llu of the sampler's %llu samples in this range were lost (all targets)\n",
                   static_cast<unsigned long long>(lost), static_cast<unsigned long long>(stats->samples + lost));
  }
  if (options.format == "json")
    std::fprintf(out, "%s\n", profile::to_flame_tree(*profile, options.target).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else
    std::fputs(profile::to_folded(*profile).c_str(), out);
  return 0;
}

int print_latency(const Options& options, Context& ctx, std::FILE* out, std::FILE* err) {
  auto ops = ctx.query->latency(ctx.host, options.target, options.operation, options.range);
  if (!ops) {
    std::fprintf(err, "perfwatch: %s\n", ops.error().message.c_str());
    return 1;
  }
  if (ops->empty())
    std::fprintf(err, "perfwatch: no calls of %s of target '%s' between %s and %s\n",
                 options.operation.empty() ? "any operation" : ("operation '" + options.operation + "'").c_str(),
                 options.target.c_str(), format_time(options.range.from).c_str(), format_time(options.range.to).c_str());
  add_idle_operations(options, ctx, *ops);
  auto probes = ctx.query->probe_states(ctx.host, options.range);
  if (!probes) {
    std::fprintf(err, "perfwatch: %s\n", probes.error().message.c_str());
    return 1;
  }
  auto health = ctx.query->latency_health(ctx.host, options.range);
  if (options.format == "json") {
    nlohmann::json doc = {{"target", options.target},
                          {"from", format_time(options.range.from)},
                          {"to", format_time(options.range.to)},
                          {"operations", nlohmann::json::array()}};
    auto series = ctx.query->latency_series(ctx.host, options.target, options.operation, options.range);
    for (const auto& op : *ops) {
      nlohmann::json item = daemon::operation_json(op, ctx.config.tier_thresholds_ns(), *probes);
      item["buckets"] = daemon::operation_buckets_json(op);
      for (const storage::LatencySeries& s : series ? *series : std::vector<storage::LatencySeries>{}) {
        if (s.name != op.name) continue;
        item["series"] = nlohmann::json::array();
        for (const auto& p : s.points)
          item["series"].push_back({{"start", format_time(p.start)}, {"calls", p.calls}, {"p50_ns", p.p50_ns},
                                    {"p95_ns", p.p95_ns}, {"p99_ns", p.p99_ns}, {"max_ns", p.max_ns}, {"slow", p.slow}});
      }
      doc["operations"].push_back(std::move(item));
    }
    if (health) doc["health"] = daemon::latency_health_json(*health);
    std::fprintf(out, "%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::size_t name_width = 9;
  for (const auto& op : *ops) name_width = std::max(name_width, op.name.size());
  const int nw = static_cast<int>(name_width);
  std::fprintf(out, "%-*s  %-7s  %-4s  %9s  %8s  %8s  %8s  %8s  %8s  %6s  %s\n", nw, "OPERATION", "SOURCE", "TIER",
               "THRESHOLD", "CALLS", "P50", "P95", "P99", "MAX", "SLOW", "VERDICT");
  for (const auto& op : *ops) {
    const profile::LatencyHistogram& h = op.histogram;
    const profile::Verdict v = profile::judge(h, op.threshold_ns, ctx.config.tier_thresholds_ns());
    const std::string tier = op.tier == profile::Tier::none ? "-" : std::string(profile::to_string(op.tier));
    if (op.windows == 0) {
      const auto reason = daemon::not_measured(op.source, *probes);
      std::fprintf(out, "%-*s  %-7s  %-4s  %9s  %8d  %8s  %8s  %8s  %8s  %6s  %s\n", nw, op.name.c_str(), op.source.c_str(),
                   tier.c_str(), profile::format_ns(op.threshold_ns).c_str(), 0, "-", "-", "-", "-", "-",
                   reason ? reason->c_str() : "no calls");
      continue;
    }
    char slow[16];
    std::snprintf(slow, sizeof slow, "%.1f%%", h.count ? 100.0 * static_cast<double>(h.slow) / h.count : 0.0);
    std::fprintf(out, "%-*s  %-7s  %-4s  %9s  %8llu  %8s  %8s  %8s  %8s  %6s  %s (p99 in %s)\n", nw, op.name.c_str(),
                 op.source.c_str(), tier.c_str(), profile::format_ns(op.threshold_ns).c_str(),
                 static_cast<unsigned long long>(h.count), profile::format_ns(profile::percentile(h, 0.50)).c_str(),
                 profile::format_ns(profile::percentile(h, 0.95)).c_str(), profile::format_ns(profile::percentile(h, 0.99)).c_str(),
                 profile::format_ns(h.max_ns).c_str(), slow, v.ok ? "ok" : "SLOW", profile::grade_text(v).c_str());
  }
  if (health && health->statsd_malformed + health->statsd_oversized + health->lost_no_entry + health->lost_unwound +
                    health->lost_map_full > 0)
    std::fprintf(err,
                 "perfwatch: note: in this range (all targets): %llu malformed StatsD lines, %llu oversized datagrams, "
                 "%llu probe events lost\n",
                 static_cast<unsigned long long>(health->statsd_malformed),
                 static_cast<unsigned long long>(health->statsd_oversized),
                 static_cast<unsigned long long>(health->lost_no_entry + health->lost_unwound + health->lost_map_full));
  return 0;
}

// What an alert is about: target, and operation or cache when it has one.
std::string subject_of(const storage::AlertRecord& a) {
  const auto label = [&](const char* key) {
    auto it = a.labels.find(key);
    return it == a.labels.end() ? std::string() : it->second;
  };
  std::string subject = label("target");
  for (const char* key : {"operation", "cache"})
    if (!label(key).empty()) subject += "/" + label(key);
  return subject.empty() ? "-" : subject;
}

int list_alerts(const Options& options, Context& ctx, std::FILE* out, std::FILE* err) {
  auto found = ctx.query->alerts(ctx.host, options.range);
  if (!found) {
    std::fprintf(err, "perfwatch: %s\n", found.error().message.c_str());
    return 1;
  }
  if (options.format == "json") {
    nlohmann::json doc = nlohmann::json::array();
    for (const storage::AlertRecord& a : *found) doc.push_back(storage::to_json(a));
    std::fprintf(out, "%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (found->empty()) {
    std::fprintf(out, "no alerts between %s and %s\n", format_time(options.range.from).c_str(),
                 format_time(options.range.to).c_str());
    return 0;
  }
  for (const storage::AlertRecord& a : *found) {
    const auto name = a.labels.count("alertname") ? a.labels.at("alertname") : a.rule;
    const auto summary = a.annotations.count("summary") ? a.annotations.at("summary") : "";
    std::fprintf(out, "%-8s  %s  %s  %s  (%s)\n", a.state.c_str(), name.c_str(), subject_of(a).c_str(),
                 a.host.c_str(), a.fingerprint.c_str());
    if (!summary.empty()) std::fprintf(out, "    %s\n", summary.c_str());
    for (const auto& e : a.history) std::fprintf(out, "    %s  %-9s\n", format_time(e.at).c_str(), e.state.c_str());
    for (const auto& d : a.deliveries)
      std::fprintf(out, "    %s  %s to %s: %s after %d attempt%s%s%s\n", format_time(d.queued_at).c_str(),
                   d.status.c_str(), d.receiver.c_str(), d.state.c_str(), d.attempts, d.attempts == 1 ? "" : "s",
                   d.last_error.empty() ? "" : "; last error: ", d.last_error.c_str());
    if (auto link = a.annotations.find("dashboard"); link != a.annotations.end())
      std::fprintf(out, "    %s\n", link->second.c_str());
  }
  return 0;
}

std::string percent(std::optional<double> ratio) {
  if (!ratio) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * *ratio);
  return buf;
}

void report_no_caches(const Options& options, std::FILE* err) {
  std::fprintf(err, "perfwatch: no cache lookups of target '%s' between %s and %s\n", options.target.c_str(),
               format_time(options.range.from).c_str(), format_time(options.range.to).c_str());
}

int print_cache(const Options& options, Context& ctx, std::FILE* out, std::FILE* err) {
  if (options.format == "json") {
    auto doc = storage::read_cache_report(*ctx.query, ctx.host, options.target, options.range);
    if (!doc) {
      std::fprintf(err, "perfwatch: %s\n", doc.error().message.c_str());
      return 1;
    }
    if (doc->at("caches").empty()) report_no_caches(options, err);
    std::fprintf(out, "%s\n", doc->dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  auto caches = ctx.query->caches(ctx.host, options.target, options.range);
  auto health = caches ? ctx.query->cache_health(ctx.host, options.range) : Result<storage::CacheHealth>(caches.error());
  if (!health) {
    std::fprintf(err, "perfwatch: %s\n", health.error().message.c_str());
    return 1;
  }
  if (caches->empty()) report_no_caches(options, err);
  std::size_t name_width = 5;
  for (const auto& c : *caches) name_width = std::max(name_width, c.name.size());
  const int nw = static_cast<int>(name_width);
  std::fprintf(out, "%-*s  %-6s  %12s  %12s  %12s  %9s  %7s  %s\n", nw, "CACHE", "KIND", "LOOKUPS", "HITS", "MISSES",
               "HIT RATIO", "WINDOWS", "COUNTED BY");
  for (const auto& c : *caches)
    std::fprintf(out, "%-*s  %-6s  %12llu  %12llu  %12llu  %9s  %7llu  %s\n", nw, c.name.c_str(), c.kind.c_str(),
                 static_cast<unsigned long long>(c.lookups), static_cast<unsigned long long>(c.hits),
                 static_cast<unsigned long long>(c.misses), percent(storage::hit_ratio(c.lookups, c.hits)).c_str(),
                 static_cast<unsigned long long>(c.windows), c.spec.empty() ? "-" : c.spec.c_str());
  if (health->windows == 0) return 0;
  const profile::CacheCounts& host = health->host;
  std::fprintf(out, "\npage cache: %s\n", health->page_cache.text.c_str());
  std::fprintf(out, "LLC: %s\n", health->llc.text.c_str());
  std::fprintf(out, "all processes: page cache %llu lookups, %llu misses (%s hits)",
               static_cast<unsigned long long>(host.page_lookups), static_cast<unsigned long long>(host.page_misses()),
               percent(storage::host_page_hit_ratio(host)).c_str());
  if (health->llc.measured)
    std::fprintf(out, "; LLC %llu references, %llu misses", static_cast<unsigned long long>(host.llc_references),
                 static_cast<unsigned long long>(host.llc_misses));
  std::fputs("\n", out);
  return 0;
}

}  // namespace

std::string usage() {
  return "usage: perfwatch [--config FILE] [--host NAME | --all-hosts] COMMAND [OPTIONS]\n"
         "\n"
         "commands:\n"
         "  targets [RANGE] [--format table|json]\n"
         "      targets with their matched pids and sample counts\n"
         "  flame --target NAME [RANGE] [--format folded|json]\n"
         "      the target's merged profile; folded is 'root;child;leaf COUNT' (flamegraph.pl input)\n"
         "  latency --target NAME [--op NAME] [RANGE] [--format table|json]\n"
         "      the target's operations: calls, p50/p95/p99/max merged over the range, the share slower\n"
         "      than the threshold, and the verdict (ok when p99 is within the threshold; the tier p99 is in)\n"
         "  alerts [RANGE] [--format table|json]\n"
         "      alerts that changed state in the range (default --since 1d) or are active, with their history\n"
         "      and deliveries\n"
         "  cache --target NAME [RANGE] [--format table|json]\n"
         "      the target's cache hit rates: page cache, LLC (where the CPU has the counters) and its\n"
         "      application caches; lookups, hits, misses and hit ratio over the range (json: per window too)\n"
         "\n"
         "RANGE: --since DURATION (default 10m; 250ms, 2s, 10m, 14d) or --from TIME [--to TIME]\n"
         "       TIME: 2026-11-24T10:00:00Z or Unix seconds; --to defaults to now\n"
         "--config FILE  the perfwatch configuration (default " +
         std::string(default_config_path) +
         "); it names the database\n"
         "--host NAME    whose data to read (default: this machine's name from the config)\n";
}

Result<Options> parse_args(std::span<const std::string> args, profile::TimePoint now) {
  Options o;
  std::optional<std::string> command, since, from, to, format;
  std::optional<Error> error;
  for (std::size_t i = 0; i < args.size() && !error; ++i) {
    const std::string& arg = args[i];
    if (auto v = take_value(args, i, "--config", error)) o.config_path = *v;
    else if (auto v = take_value(args, i, "--host", error)) o.host = *v;
    else if (auto v = take_value(args, i, "--target", error)) o.target = *v;
    else if (auto v = take_value(args, i, "--op", error)) o.operation = *v;
    else if (auto v = take_value(args, i, "--since", error)) since = *v;
    else if (auto v = take_value(args, i, "--from", error)) from = *v;
    else if (auto v = take_value(args, i, "--to", error)) to = *v;
    else if (auto v = take_value(args, i, "--format", error)) format = *v;
    else if (error) break;
    else if (arg == "--all-hosts") o.all_hosts = true;
    else if (!arg.starts_with("-") && !command) command = arg;
    else error = make_error("unexpected argument '" + arg + "'");
  }
  if (error) return *error;
  if (!command) return make_error("no command given");
  if (*command == "targets") o.command = Command::targets;
  else if (*command == "flame") o.command = Command::flame;
  else if (*command == "latency") o.command = Command::latency;
  else if (*command == "cache") o.command = Command::cache;
  else if (*command == "alerts") o.command = Command::alerts;
  else return make_error("unknown command '" + *command + "'");

  if (o.command == Command::flame && o.target.empty()) return make_error("flame needs --target NAME");
  if (o.command == Command::latency && o.target.empty()) return make_error("latency needs --target NAME");
  if (o.command == Command::cache && o.target.empty()) return make_error("cache needs --target NAME");
  if ((o.command == Command::targets || o.command == Command::alerts) && !o.target.empty())
    return make_error("--target goes with flame, latency and cache");
  if (o.command != Command::latency && !o.operation.empty()) return make_error("--op only goes with latency");
  if (o.all_hosts && o.host) return make_error("--host and --all-hosts exclude each other");
  const std::vector<std::string> formats =
      o.command == Command::flame ? std::vector<std::string>{"folded", "json"} : std::vector<std::string>{"table", "json"};
  o.format = format.value_or(formats.front());
  if (std::find(formats.begin(), formats.end(), o.format) == formats.end())
    return make_error("--format must be " + formats[0] + " or " + formats[1] + ", got '" + o.format + "'");

  if (since && (from || to)) return make_error("use either --since or --from/--to, not both");
  if (to && !from) return make_error("--to needs --from");
  if (from) {
    Result<profile::TimePoint> f = parse_time(*from);
    if (!f) return make_error("--from: " + f.error().message);
    Result<profile::TimePoint> t = to ? parse_time(*to) : Result<profile::TimePoint>(now);
    if (!t) return make_error("--to: " + t.error().message);
    if (*t <= *f) return make_error("--to must be later than --from");
    o.range = {*f, *t};
  } else {
    Result<Duration> d = parse_duration(since.value_or(o.command == Command::alerts ? "1d" : "10m"));
    if (!d) return make_error("--since: " + d.error().message);
    Result<profile::TimePoint> start = time_before(now, *d);
    if (!start) return make_error("--since " + since.value_or("") + ": " + start.error().message);
    o.range = {*start, now};
  }
  return o;
}

int run(const Options& options, std::FILE* out, std::FILE* err) {
  Result<Context> ctx = open_context(options);
  if (!ctx) {
    std::fprintf(err, "perfwatch: %s\n", ctx.error().message.c_str());
    return 1;
  }
  switch (options.command) {
    case Command::targets: return list_targets(options, *ctx, out, err);
    case Command::flame: return print_flame(options, *ctx, out, err);
    case Command::latency: return print_latency(options, *ctx, out, err);
    case Command::alerts: return list_alerts(options, *ctx, out, err);
    case Command::cache: return print_cache(options, *ctx, out, err);
  }
  return 1;
}

}  // namespace perfwatch::cli
