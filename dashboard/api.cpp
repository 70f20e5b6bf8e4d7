#include "dashboard/api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <span>

#include "common/flame_tree.h"
#include "daemon/cli_time.h"
#include "daemon/latency_json.h"
#include "dashboard/exports.h"
#include "storage/rollups.h"
#include "storage/query_json.h"

namespace perfwatch::dashboard {
namespace {

using daemon::format_time;

Response bad_request(const Error& e) { return Response::error(400, e.message); }

// The target name comes from the URL, any bytes: the download's name keeps letters, digits, '.', '_' and
// '-' (every configured target's name is made of them) and makes the rest '_'.
std::string attachment(std::string file_name) {
  for (char& c : file_name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return "attachment; filename=\"" + file_name + "\"";
}

// The smallest node a tree keeps, as a share of the total: default 0.01%, narrower than a pixel.
Result<double> min_share(const Request& request) {
  const std::string* text = request.get("min_share");
  if (!text) return 0.0001;
  double value = -1;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc{} || end != text->data() + text->size() || !(value >= 0 && value < 1))
    return make_error("min_share must be a number from 0 (keep every frame) to below 1, got '" + *text + "'");
  return value;
}

std::uint64_t min_value(double share, std::uint64_t total) {
  return static_cast<std::uint64_t>(std::ceil(share * static_cast<double>(total)));
}

// A query failed: the connection may be the reason, so it is not reused.
Response storage_failure(QueryPool::Lease& lease, const Error& e) {
  lease.discard();
  return Response::error(503, e.message);
}

nlohmann::json range_json(const storage::TimeRange& r) {
  return {{"from", format_time(r.from)}, {"to", format_time(r.to)}};
}

// A target's state per tier: T1..T5 always, "own" when some operation has its own threshold. A tier is
// "slow" when one of its operations is, else "ok" when one is, else "no_data" when it has operations
// (none with calls in range), else "none".
nlohmann::json tier_states(const std::vector<storage::OperationLatency>& ops, std::span<const std::uint64_t, 5> tiers_ns) {
  nlohmann::json out = nlohmann::json::array();
  for (int tier = 1; tier <= 6; ++tier) {
    const profile::Tier t = tier <= 5 ? static_cast<profile::Tier>(tier) : profile::Tier::none;
    nlohmann::json members = nlohmann::json::array();
    bool any_slow = false, any_ok = false;
    for (const storage::OperationLatency& op : ops) {
      if (op.tier != t) continue;
      const std::string_view verdict = daemon::verdict_name(op, tiers_ns);
      any_slow |= verdict == "slow";
      any_ok |= verdict == "ok";
      members.push_back({{"name", op.name}, {"verdict", verdict}, {"p99_ns", profile::percentile(op.histogram, 0.99)},
                         {"threshold_ns", op.threshold_ns}});
    }
    if (t == profile::Tier::none && members.empty()) break;
    const char* state = any_slow ? "slow" : any_ok ? "ok" : members.empty() ? "none" : "no_data";
    out.push_back({{"name", t == profile::Tier::none ? "own" : std::string(profile::to_string(t))},
                   {"state", state},
                   {"operations", std::move(members)}});
  }
  return out;
}

// The series step: "window" (0) or a rollup resolution in seconds. auto: per window while that gives at
// most max_points points over the range, else the finest resolution that does (or the coarsest).
Result<int> latency_step(const Request& request, const storage::TimeRange& range, Duration window) {
  constexpr double max_points = 1500;
  const std::string* text = request.get("step");
  const std::string step = text ? *text : "auto";
  if (step == "window") return 0;
  if (step == "5m") return 300;
  if (step == "1h") return 3600;
  if (step != "auto") return make_error("step must be auto, window, 5m or 1h, got '" + step + "'");
  const double seconds = std::chrono::duration<double>(range.to - range.from).count();
  if (seconds / std::max(std::chrono::duration<double>(window).count(), 1.0) <= max_points) return 0;
  for (auto it = storage::rollup_resolutions.rbegin(); it != storage::rollup_resolutions.rend(); ++it)
    if (seconds / *it <= max_points) return *it;
  return storage::rollup_resolutions.front();
}

std::string step_name(int step_s) { return step_s == 0 ? "window" : step_s == 300 ? "5m" : "1h"; }

// A series as columns, as uPlot takes them: Unix seconds and one array per figure.
nlohmann::json series_json(const storage::LatencySeries* series) {
  nlohmann::json start = nlohmann::json::array(), calls = nlohmann::json::array(),
                 p50 = nlohmann::json::array(), p95 = nlohmann::json::array(), p99 = nlohmann::json::array(),
                 max = nlohmann::json::array(), slow = nlohmann::json::array(), threshold = nlohmann::json::array();
  auto unix_seconds = [](profile::TimePoint t) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()) / 1e3;
  };
  for (const storage::LatencyPoint& p : series ? series->points : std::vector<storage::LatencyPoint>{}) {
    start.push_back(unix_seconds(p.start));
    calls.push_back(p.calls);
    p50.push_back(p.p50_ns);
    p95.push_back(p.p95_ns);
    p99.push_back(p.p99_ns);
    max.push_back(p.max_ns);
    slow.push_back(p.slow);
    threshold.push_back(p.threshold_ns);
  }
  return {{"start", std::move(start)}, {"calls", std::move(calls)},
          {"p50_ns", std::move(p50)},  {"p95_ns", std::move(p95)}, {"p99_ns", std::move(p99)},
          {"max_ns", std::move(max)},  {"slow", std::move(slow)},  {"threshold_ns", std::move(threshold)}};
}

}  // namespace

Api::Api(QueryPool& pool, ApiOptions options, std::vector<const MetricsSource*> metrics)
    : pool_(pool),
      options_(std::move(options)),
      metrics_(std::move(metrics)),
      cache_(std::make_unique<TreeCache>(options_.cache_bytes)) {}

Api::~Api() = default;

void Api::install(Router& router) const {
  using A = Router::Access;
  router.add("GET", "/healthz", A::open, [](const Request&) { return Response::json({{"status", "ok"}}); });
  router.add("GET", "/metrics", A::token, [this](const Request& r) { return metrics(r); });
  router.add("GET", "/api/v1/info", A::token, [this](const Request& r) { return info(r); });
  router.add("GET", "/api/v1/targets", A::token, [this](const Request& r) { return targets(r); });
  router.add("GET", "/api/v1/targets/{target}/profile", A::token, [this](const Request& r) { return profile(r); });
  router.add("GET", "/api/v1/targets/{target}/diff", A::token, [this](const Request& r) { return diff(r); });
  router.add("GET", "/api/v1/targets/{target}/pprof", A::token,
             [this](const Request& r) { return export_profile(r, Export::pprof); });
  router.add("GET", "/api/v1/targets/{target}/folded", A::token,
             [this](const Request& r) { return export_profile(r, Export::folded); });
  router.add("GET", "/api/v1/targets/{target}/speedscope", A::token,
             [this](const Request& r) { return export_profile(r, Export::speedscope); });
  router.add("GET", "/api/v1/targets/{target}/latency", A::token, [this](const Request& r) { return latency(r); });
  router.add("GET", "/api/v1/targets/{target}/deploys", A::token, [this](const Request& r) { return deploys(r); });
  router.add("GET", "/api/v1/targets/{target}/caches", A::token, [this](const Request& r) { return caches(r); });
  router.add("GET", "/api/v1/alerts", A::token, [this](const Request& r) { return alerts(r); });
}

Result<storage::TimeRange> Api::range(const Request& request, const std::string& prefix, bool required) const {
  const std::string *from = request.get(prefix + "from"), *to = request.get(prefix + "to"),
                    *since = request.get(prefix + "since");
  const profile::TimePoint now = options_.now();
  if (since && (from || to)) return make_error("use either " + prefix + "since or " + prefix + "from/" + prefix + "to, not both");
  if (to && !from) return make_error(prefix + "to needs " + prefix + "from");
  if (from) {
    Result<profile::TimePoint> f = daemon::parse_time(*from);
    if (!f) return make_error(prefix + "from: " + f.error().message);
    Result<profile::TimePoint> t = to ? daemon::parse_time(*to) : Result<profile::TimePoint>(now);
    if (!t) return make_error(prefix + "to: " + t.error().message);
    if (*t <= *f) return make_error(prefix + "to must be later than " + prefix + "from");
    return storage::TimeRange{*f, *t};
  }
  if (required && !since) return make_error("missing " + prefix + "from (or " + prefix + "since)");
  Result<Duration> d = parse_duration(since ? *since : "1h");
  if (!d) return make_error(prefix + "since: " + d.error().message);
  Result<profile::TimePoint> start = time_before(now, *d);
  if (!start) return make_error(prefix + "since " + (since ? *since : "1h") + ": " + start.error().message);
  return storage::TimeRange{*start, now};
}

Result<Api::Scope> Api::scope(const Request& request) const {
  Result<storage::TimeRange> r = range(request, "", false);
  if (!r) return r.error();
  const std::string* host = request.get("host");
  std::string selected = host ? (*host == "*" ? "" : *host) : options_.host;
  if (host && host->empty()) return make_error("host must not be empty (use * for every host)");
  return Scope{std::move(selected), *r};
}

Response Api::targets(const Request& request) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host"}); !ok) return bad_request(ok.error());
  Result<Scope> s = scope(request);
  if (!s) return bad_request(s.error());
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  auto found = (*lease)->targets(s->host, s->range);
  if (!found) return storage_failure(*lease, found.error());
  // The operations of every listed target, one query per host.
  std::map<std::pair<std::string, std::string>, std::vector<storage::OperationLatency>> operations;
  std::set<std::string> hosts;
  for (const storage::TargetSummary& t : *found) hosts.insert(t.host);
  for (const std::string& host : hosts) {
    auto ops = (*lease)->latency(host, "", "", s->range, /*with_idle=*/true);
    if (!ops) return storage_failure(*lease, ops.error());
    for (storage::OperationLatency& op : *ops) operations[{host, op.target}].push_back(std::move(op));
  }
  nlohmann::json list = nlohmann::json::array();
  for (const storage::TargetSummary& t : *found)
    list.push_back({{"host", t.host},
                    {"name", t.name},
                    {"pids", t.pids},
                    {"samples", t.samples},
                    {"windows", t.windows},
                    {"last_window_end", t.last_window_end ? nlohmann::json(format_time(*t.last_window_end)) : nullptr},
                    {"tiers", tier_states(operations[{t.host, t.name}], options_.tiers_ns)}});
  auto probes = (*lease)->probe_states(s->host, s->range);
  if (!probes) return storage_failure(*lease, probes.error());
  nlohmann::json probe_hosts = nlohmann::json::array();
  for (const storage::HostProbes& h : *probes) probe_hosts.push_back(storage::to_json(h));
  nlohmann::json doc = range_json(s->range);
  doc["host"] = s->host.empty() ? "*" : s->host;
  doc["targets"] = std::move(list);
  doc["hosts"] = std::move(probe_hosts);
  return Response::json(doc);
}

std::optional<Response> Api::load_profile(const Request& request, Scope& scope, profile::Profile& out) const {
  Result<Scope> s = this->scope(request);
  if (!s) return bad_request(s.error());
  scope = std::move(*s);
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  auto p = (*lease)->profile(scope.host, request.params.at("target"), scope.range);
  if (!p) return storage_failure(*lease, p.error());
  out = std::move(*p);
  return std::nullopt;
}

// The response of a tree endpoint: the fields of `head`, then the cached tree and totals, spliced as text.
Response tree_response(nlohmann::json head, const CachedTree& tree, bool diff) {
  if (diff) {
    head["base"]["total"] = tree.base_total;
    head["comparison"]["total"] = tree.total;
  } else {
    head["total"] = tree.total;
  }
  Response r = Response::json(head);
  r.body.pop_back();  // the closing brace
  r.body += ",\"tree\":" + tree.json + "}";
  return r;
}

Response Api::profile(const Request& request) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host", "min_share"}); !ok) return bad_request(ok.error());
  Result<double> share = min_share(request);
  if (!share) return bad_request(share.error());
  Result<Scope> s = scope(request);
  if (!s) return bad_request(s.error());
  const std::string& target = request.params.at("target");
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  auto fingerprint = (*lease)->fingerprint(s->host, target, s->range);
  if (!fingerprint) return storage_failure(*lease, fingerprint.error());
  const std::string key = "profile\n" + s->host + "\n" + target + "\n" + std::to_string(*share) + "\n" + *fingerprint;
  auto tree = cache_->get(key);
  if (!tree) {
    auto p = (*lease)->profile(s->host, target, s->range);
    if (!p) return storage_failure(*lease, p.error());
    tree = std::make_shared<CachedTree>(
        CachedTree{p->total(), 0, profile::to_flame_tree_text(*p, target, min_value(*share, p->total()))});
    cache_->put(key, tree);
  }
  nlohmann::json head = range_json(s->range);
  head["target"] = target;
  head["host"] = s->host.empty() ? "*" : s->host;
  return tree_response(std::move(head), *tree, false);
}

Response Api::diff(const Request& request) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host", "base_from", "base_to", "min_share"}); !ok)
    return bad_request(ok.error());
  Result<double> share = min_share(request);
  if (!share) return bad_request(share.error());
  Result<Scope> s = scope(request);
  if (!s) return bad_request(s.error());
  Result<storage::TimeRange> base = range(request, "base_", true);
  if (!base) return bad_request(base.error());
  const std::string& target = request.params.at("target");
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  auto base_print = (*lease)->fingerprint(s->host, target, *base);
  if (!base_print) return storage_failure(*lease, base_print.error());
  auto comparison_print = (*lease)->fingerprint(s->host, target, s->range);
  if (!comparison_print) return storage_failure(*lease, comparison_print.error());
  const std::string key = "diff\n" + s->host + "\n" + target + "\n" + std::to_string(*share) + "\n" + *base_print +
                          "\n" + *comparison_print;
  auto tree = cache_->get(key);
  if (!tree) {
    auto before = (*lease)->profile(s->host, target, *base);
    if (!before) return storage_failure(*lease, before.error());
    auto after = (*lease)->profile(s->host, target, s->range);
    if (!after) return storage_failure(*lease, after.error());
    tree = std::make_shared<CachedTree>(CachedTree{
        after->total(), before->total(),
        profile::to_diff_tree_text(*before, *after, target, min_value(*share, after->total()))});
    cache_->put(key, tree);
  }
  nlohmann::json head;
  head["target"] = target;
  head["host"] = s->host.empty() ? "*" : s->host;
  head["base"] = range_json(*base);
  head["comparison"] = range_json(s->range);
  return tree_response(std::move(head), *tree, true);
}

Response Api::export_profile(const Request& request, Export format) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host"}); !ok) return bad_request(ok.error());
  Scope s;
  profile::Profile p;
  if (auto failed = load_profile(request, s, p)) return *failed;
  const std::string& target = request.params.at("target");
  const ExportInfo export_info{target, s.range, options_.frequency_hz};
  Response r;
  std::string file = target;
  switch (format) {
    case Export::pprof:
      r = Response::bytes("application/octet-stream", to_pprof_gzip(p, export_info));
      file += ".pb.gz";
      break;
    case Export::folded:
      r = Response::bytes("text/plain; charset=utf-8", profile::to_folded(p));
      file += ".folded";
      break;
    case Export::speedscope:
      r = Response::json(to_speedscope(p, export_info));
      file += ".speedscope.json";
      break;
  }
  r.headers.emplace_back("Content-Disposition", attachment(file));
  return r;
}

Response Api::latency(const Request& request) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host", "op", "step"}); !ok) return bad_request(ok.error());
  Result<Scope> s = scope(request);
  if (!s) return bad_request(s.error());
  const std::string* op = request.get("op");
  if (op && op->empty()) return bad_request(make_error("op must not be empty (leave it out for every operation)"));
  Result<int> step = latency_step(request, s->range, options_.window);
  if (!step) return bad_request(step.error());
  const std::string& target = request.params.at("target");
  const std::string operation = op ? *op : "";
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  auto ops = (*lease)->latency(s->host, target, operation, s->range, /*with_idle=*/true);
  if (!ops) return storage_failure(*lease, ops.error());
  auto series = (*lease)->latency_series(s->host, target, operation, s->range, *step);
  if (!series) return storage_failure(*lease, series.error());
  auto health = (*lease)->latency_health(s->host, s->range);
  if (!health) return storage_failure(*lease, health.error());
  auto probes = (*lease)->probe_states(s->host, s->range);
  if (!probes) return storage_failure(*lease, probes.error());
  nlohmann::json list = nlohmann::json::array();
  for (const storage::OperationLatency& o : *ops) {
    nlohmann::json item = daemon::operation_json(o, options_.tiers_ns, *probes);
    auto it = std::find_if(series->begin(), series->end(), [&](const auto& x) { return x.name == o.name; });
    item["series"] = series_json(it == series->end() ? nullptr : &*it);
    list.push_back(std::move(item));
  }
  nlohmann::json doc = range_json(s->range);
  doc["target"] = target;
  doc["host"] = s->host.empty() ? "*" : s->host;
  doc["step"] = step_name(*step);
  doc["operations"] = std::move(list);
  doc["health"] = daemon::latency_health_json(*health);
  return Response::json(doc);
}

Response Api::alerts(const Request& request) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host", "target", "state"}); !ok) return bad_request(ok.error());
  Result<Scope> s = scope(request);
  if (!s) return bad_request(s.error());
  storage::AlertFilter filter;
  if (const std::string* target = request.get("target")) {
    if (target->empty()) return Response::error(400, "target must not be empty (leave it out for every target)");
    filter.target = *target;
  }
  if (const std::string* state = request.get("state")) {
    if (*state != "inactive" && *state != "pending" && *state != "firing")
      return Response::error(400, "state must be inactive, pending or firing, got '" + *state + "'");
    filter.state = *state;
  }
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  auto found = (*lease)->alerts(s->host, s->range, filter);
  if (!found) return storage_failure(*lease, found.error());
  nlohmann::json list = nlohmann::json::array();
  for (const storage::AlertRecord& a : *found) list.push_back(storage::to_json(a));
  nlohmann::json doc = range_json(s->range);
  doc["host"] = s->host.empty() ? "*" : s->host;
  doc["alerts"] = std::move(list);
  return Response::json(doc);
}

Response Api::target_document(const Request& request, const TargetReader& read) const {
  if (auto ok = request.allow_only({"from", "to", "since", "host"}); !ok) return bad_request(ok.error());
  Result<Scope> s = scope(request);
  if (!s) return bad_request(s.error());
  const std::string& target = request.params.at("target");
  Result<QueryPool::Lease> lease = pool_.acquire();
  if (!lease) return Response::error(503, lease.error().message);
  Result<nlohmann::json> doc = read(**lease, *s, target);
  if (!doc) return storage_failure(*lease, doc.error());
  doc->update(range_json(s->range));
  (*doc)["target"] = target;
  (*doc)["host"] = s->host.empty() ? "*" : s->host;
  return Response::json(*doc);
}

Response Api::deploys(const Request& request) const {
  return target_document(request, [](storage::Query& query, const Scope& s, const std::string& target) -> Result<nlohmann::json> {
    auto found = query.deploys(s.host, target, s.range);
    if (!found) return found.error();
    nlohmann::json list = nlohmann::json::array();
    for (const storage::DeployRecord& d : *found) list.push_back(storage::to_json(d));
    return nlohmann::json{{"deploys", std::move(list)}};
  });
}

Response Api::caches(const Request& request) const {
  return target_document(request, [](storage::Query& query, const Scope& s, const std::string& target) {
    return storage::read_cache_report(query, s.host, target, s.range);
  });
}

Response Api::metrics(const Request& request) const {
  if (auto ok = request.allow_only({}); !ok) return bad_request(ok.error());
  MetricsWriter out;
  for (const MetricsSource* source : metrics_) source->collect(out);
  return Response::bytes("text/plain; version=0.0.4; charset=utf-8", out.text());
}

Response Api::info(const Request& request) const {
  if (auto ok = request.allow_only({}); !ok) return bad_request(ok.error());
  nlohmann::json tiers = nlohmann::json::array();
  for (std::size_t i = 0; i < options_.tiers_ns.size(); ++i)
    tiers.push_back({{"name", profile::to_string(static_cast<profile::Tier>(i + 1))},
                     {"threshold_ms", static_cast<double>(options_.tiers_ns[i]) / 1e6}});
  return Response::json({{"host", options_.host},
                         {"version", options_.version},
                         {"frequency_hz", options_.frequency_hz},
                         {"tiers", std::move(tiers)}});
}

}  // namespace perfwatch::dashboard
