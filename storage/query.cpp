#include "storage/query.h"

#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <unordered_map>

#include "storage/pg_codec.h"
#include "storage/rollups.h"

namespace perfwatch::storage {
namespace {

std::uint64_t as_count(const pqxx::field& f) { return f.is_null() ? 0 : static_cast<std::uint64_t>(f.as<std::int64_t>()); }

}  // namespace

Result<std::unique_ptr<Query>> Query::connect(const ConnectOptions& options) {
  auto conn = connect_database(options, /*migrate=*/false);
  if (!conn) return conn.error();
  return guarded("cannot read the perfwatch schema", [&]() -> Result<std::unique_ptr<Query>> {
    pqxx::nontransaction tx(**conn);
    if (tx.exec1("SELECT to_regclass('schema_migrations') IS NULL")[0].as<bool>())
      return make_error("the database holds no perfwatch data yet: perfwatchd has not written to it");
    tx.commit();
    return std::make_unique<Query>(std::move(*conn));
  });
}

Query::Query(std::unique_ptr<pqxx::connection> conn) : conn_(std::move(conn)) {}
Query::~Query() = default;

Result<std::vector<TargetSummary>> Query::targets(const std::string& host, TimeRange range) {
  return guarded("cannot list targets", [&]() -> Result<std::vector<TargetSummary>> {
    pqxx::read_transaction tx(*conn_);
    // Per target: totals over the range, and the pids of its newest window in it.
    const pqxx::result rows = tx.exec_params(
        "SELECT h.name, t.name, agg.samples, agg.windows, " + epoch_us_sql("agg.last_end") + ", newest.pids::text"
        " FROM targets t JOIN hosts h ON h.id = t.host_id"
        " JOIN LATERAL (SELECT sum(w.samples)::bigint AS samples, count(*)::bigint AS windows,"
        "                      max(w.window_end) AS last_end"
        "               FROM windows w WHERE w.target_id = t.id"
        "                 AND w.window_start >= $2::timestamptz AND w.window_start < $3::timestamptz) agg ON true"
        " LEFT JOIN LATERAL (SELECT w.pids FROM windows w WHERE w.target_id = t.id"
        "                      AND w.window_start >= $2::timestamptz AND w.window_start < $3::timestamptz"
        "                    ORDER BY w.window_start DESC LIMIT 1) newest ON true"
        " WHERE ($1 = '' OR h.name = $1) AND agg.windows > 0"
        " ORDER BY h.name, t.name",
        host, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    std::vector<TargetSummary> out;
    for (const auto& row : rows) {
      TargetSummary t;
      t.host = row[0].as<std::string>();
      t.name = row[1].as<std::string>();
      t.samples = as_count(row[2]);
      t.windows = as_count(row[3]);
      if (!row[4].is_null()) t.last_window_end = from_epoch_us(row[4].as<std::int64_t>());
      if (!row[5].is_null())
        for (std::int64_t pid : parse_int_array(row[5].as<std::string>())) t.pids.push_back(static_cast<std::int32_t>(pid));
      out.push_back(std::move(t));
    }
    return out;
  });
}

Result<profile::Profile> Query::profile(const std::string& host, const std::string& target, TimeRange range) {
  return guarded("cannot read the profile", [&]() -> Result<profile::Profile> {
    pqxx::read_transaction tx(*conn_);
    std::vector<int> target_ids;
    for (const auto& row : tx.exec_params("SELECT t.id FROM targets t JOIN hosts h ON h.id = t.host_id"
                                          " WHERE t.name = $2 AND ($1 = '' OR h.name = $1)",
                                          host, target))
      target_ids.push_back(row[0].as<int>());
    // Fresh rollup buckets where they cover the range, raw windows for the rest (storage/rollups.h).
    const PlanQuery pieces = plan_query(plan_rollups(tx, RollupKind::samples, target_ids, range.from, range.to),
                                        RollupKind::samples, "SELECT stack_id, count FROM rollup_samples",
                                        "SELECT stack_id, count FROM samples");
    if (pieces.sql.empty()) return profile::Profile{};
    const pqxx::result counts = tx.exec_params(
        "SELECT stack_id, sum(count)::bigint FROM (" + pieces.sql + ") pieces GROUP BY stack_id",
        pqxx::prepare::make_dynamic_params(pieces.params));
    std::vector<std::int64_t> stack_ids;
    stack_ids.reserve(counts.size());
    for (const auto& row : counts) stack_ids.push_back(row[0].as<std::int64_t>());
    fill_stack_cache(tx, stack_ids);

    profile::Profile out;
    std::unordered_map<std::int64_t, std::uint32_t> frame_index;
    for (std::size_t i = 0; i < stack_ids.size(); ++i) {
      auto frames = stack_frames_.find(stack_ids[i]);
      if (frames == stack_frames_.end()) continue;  // a stack row missing: the database is damaged
      profile::Stack stack;
      stack.count = as_count(counts[static_cast<int>(i)][1]);
      stack.frame_ids.reserve(frames->second.size());
      for (std::int64_t id : frames->second) {
        auto [it, fresh] = frame_index.emplace(id, static_cast<std::uint32_t>(out.frames.size()));
        if (fresh) {
          auto frame = frames_.find(id);
          out.frames.push_back(frame != frames_.end() ? frame->second : profile::Frame{});
        }
        stack.frame_ids.push_back(it->second);
      }
      out.stacks.push_back(std::move(stack));
    }
    return out;
  });
}

void Query::fill_stack_cache(pqxx::transaction_base& tx, const std::vector<std::int64_t>& stack_ids) {
  std::vector<std::int64_t> missing;
  for (std::int64_t id : stack_ids)
    if (!stack_frames_.contains(id)) missing.push_back(id);
  if (missing.empty()) return;
  if (stack_frames_.size() + missing.size() > max_cached_stacks || frames_.size() > max_cached_frames) {
    stack_frames_.clear();  // stacks refer to frames: both go
    frames_.clear();
    missing = stack_ids;
  }
  std::vector<std::int64_t> missing_frames;
  for (const auto& row : tx.exec_params("SELECT id, frame_ids::text FROM stacks WHERE id = ANY($1::bigint[])",
                                        int_array_literal(missing))) {
    std::vector<std::int64_t> frame_ids = parse_int_array(row[1].as<std::string>());
    for (std::int64_t f : frame_ids)
      if (!frames_.contains(f)) missing_frames.push_back(f);
    stack_frames_.emplace(row[0].as<std::int64_t>(), std::move(frame_ids));
  }
  if (missing_frames.empty()) return;
  std::sort(missing_frames.begin(), missing_frames.end());
  missing_frames.erase(std::unique(missing_frames.begin(), missing_frames.end()), missing_frames.end());
  for (const auto& row : tx.exec_params("SELECT id, kind, name, module FROM frames WHERE id = ANY($1::bigint[])",
                                        int_array_literal(missing_frames)))
    frames_.emplace(row[0].as<std::int64_t>(), profile::Frame{static_cast<profile::FrameKind>(row[1].as<int>()),
                                                               row[2].as<std::string>(), row[3].as<std::string>()});
}

Result<std::string> Query::fingerprint(const std::string& host, const std::string& target, TimeRange range) {
  return guarded("cannot read the windows", [&]() -> Result<std::string> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::row row = tx.exec_params1(
        "SELECT count(*)::text || '/' || coalesce(sum(w.samples), 0)::text || '/' || coalesce(" +
            epoch_us_sql("min(w.window_start)") + ", 0)::text || '/' || coalesce(" + epoch_us_sql("max(w.window_start)") +
            ", 0)::text"
            " FROM windows w WHERE w.target_id IN (SELECT t.id FROM targets t JOIN hosts h ON h.id = t.host_id"
            "                                     WHERE t.name = $2 AND ($1 = '' OR h.name = $1))"
            "   AND w.window_start >= $3::timestamptz AND w.window_start < $4::timestamptz",
        host, target, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    return row[0].as<std::string>();
  });
}

Result<profile::SamplerStats> Query::sampler_stats(const std::string& host, TimeRange range) {
  return guarded("cannot read sampler stats", [&]() -> Result<profile::SamplerStats> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::row row = tx.exec_params1(
        "SELECT sum(sampler_samples)::bigint, sum(lost_stack_collision)::bigint, sum(lost_stack_error)::bigint,"
        "       sum(lost_map_full)::bigint, sum(lost_unresolved)::bigint"
        " FROM (SELECT DISTINCT ON (w.host_id, w.window_start) w.* FROM windows w JOIN hosts h ON h.id = w.host_id"
        "       WHERE ($1 = '' OR h.name = $1)"
        "         AND w.window_start >= $2::timestamptz AND w.window_start < $3::timestamptz) per_window",
        host, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    return profile::SamplerStats{as_count(row[0]), as_count(row[1]), as_count(row[2]), as_count(row[3]),
                                 as_count(row[4])};
  });
}

namespace {

struct OperationRow {
  int id;
  std::string target, name, source, spec;
};

// The operations a latency query covers: of the host (or every host), of the target (or every target),
// by name (or every name).
std::vector<OperationRow> operations_in_scope(pqxx::transaction_base& tx, const std::string& host,
                                              const std::string& target, const std::string& operation) {
  std::vector<OperationRow> out;
  for (const auto& row : tx.exec_params(
           "SELECT o.id, t.name, o.name, o.source, o.spec FROM operations o JOIN targets t ON t.id = o.target_id"
           " JOIN hosts h ON h.id = t.host_id"
           " WHERE ($1 = '' OR h.name = $1) AND ($2 = '' OR t.name = $2) AND ($3 = '' OR o.name = $3)"
           " ORDER BY t.name, o.name, o.id",
           host, target, operation))
    out.push_back({row[0].as<int>(), row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>(),
                   row[4].as<std::string>()});
  return out;
}

// A stored piece of an operation's latency: one window, or a rollup bucket of several.
struct LatencyPiece {
  int operation_id = 0;
  std::int64_t start_us = 0;
  std::uint64_t windows = 0;
  LatencyCells cells;
};

// The operations' latency over the range, oldest piece first: fresh rollup buckets of `resolutions`
// where they cover it, raw windows elsewhere (only raw windows when `resolutions` is empty).
std::vector<LatencyPiece> read_latency(pqxx::transaction_base& tx, const std::vector<OperationRow>& ops,
                                       TimeRange range, std::span<const int> resolutions) {
  std::vector<int> ids;
  for (const OperationRow& op : ops) ids.push_back(op.id);
  const RollupPlan plan = plan_rollups(tx, RollupKind::latency, ids, range.from, range.to, resolutions);
  const std::string columns = ", " + std::string(latency_columns) + " FROM ";
  const PlanQuery pieces = plan_query(
      plan, RollupKind::latency,
      "SELECT operation_id, " + epoch_us_sql("bucket_start") + ", windows" + columns + "latency_rollups",
      "SELECT operation_id, " + epoch_us_sql("window_start") + ", 1" + columns + "latency");
  std::vector<LatencyPiece> out;
  if (pieces.sql.empty()) return out;
  for (const auto& row :
       tx.exec_params("SELECT * FROM (" + pieces.sql + ") pieces ORDER BY 2, 1", pqxx::prepare::make_dynamic_params(pieces.params)))
    out.push_back({row[0].as<int>(), row[1].as<std::int64_t>(), static_cast<std::uint64_t>(row[2].as<std::int64_t>()),
                   read_latency_columns(row, 3)});
  return out;
}

}  // namespace

Result<std::vector<OperationLatency>> Query::latency(const std::string& host, const std::string& target,
                                                     const std::string& operation, TimeRange range, bool with_idle) {
  return guarded("cannot read latencies", [&]() -> Result<std::vector<OperationLatency>> {
    pqxx::read_transaction tx(*conn_);
    const std::vector<OperationRow> ops = operations_in_scope(tx, host, target, operation);
    // An operation of several hosts is one: merged by target and name.
    std::map<std::pair<std::string, std::string>, OperationLatency> merged;
    std::map<int, const OperationRow*> by_id;
    for (const OperationRow& op : ops) {
      by_id[op.id] = &op;
      OperationLatency& out = merged[{op.target, op.name}];
      out.target = op.target;
      out.name = op.name;
      out.source = op.source;
      out.spec = op.spec;
    }
    for (const LatencyPiece& piece : read_latency(tx, ops, range, rollup_resolutions)) {
      const OperationRow& op = *by_id.at(piece.operation_id);
      OperationLatency& out = merged[{op.target, op.name}];
      profile::merge(out.histogram, piece.cells.histogram);
      out.windows += piece.windows;
      // Pieces come oldest first: the last one grades.
      out.source = op.source;
      out.spec = op.spec;
      out.tier = piece.cells.tier;
      out.threshold_ns = piece.cells.threshold_ns;
    }
    std::vector<int> idle;
    for (const OperationRow& op : ops)
      if (merged[{op.target, op.name}].windows == 0) idle.push_back(op.id);
    if (with_idle && !idle.empty()) {
      // Each idle operation's newest window anywhere, read backwards along the primary key.
      const pqxx::result newest = tx.exec_params(
          "SELECT o.id, l.tier, l.threshold_ns, " + epoch_us_sql("l.window_end") +
              " FROM unnest($1::integer[]) o(id) CROSS JOIN LATERAL (SELECT tier, threshold_ns, window_end FROM latency"
              "   WHERE operation_id = o.id ORDER BY window_start DESC LIMIT 1) l",
          int_array_literal(idle));
      for (const auto& row : newest) {
        const OperationRow& op = *by_id.at(row[0].as<int>());
        OperationLatency& out = merged[{op.target, op.name}];
        const profile::TimePoint end = from_epoch_us(row[3].as<std::int64_t>());
        if (out.last_window_end && *out.last_window_end >= end) continue;  // another host's is newer
        out.last_window_end = end;
        const int tier = row[1].as<int>();
        out.tier = tier >= 1 && tier <= 5 ? static_cast<profile::Tier>(tier) : profile::Tier::none;
        out.threshold_ns = as_count(row[2]);
      }
    }
    std::vector<OperationLatency> out;
    for (auto& [key, op] : merged)
      if (op.windows > 0 || op.last_window_end) out.push_back(std::move(op));
    return out;
  });
}

Result<std::vector<LatencySeries>> Query::latency_series(const std::string& host, const std::string& target,
                                                         const std::string& operation, TimeRange range, int step_s) {
  return guarded("cannot read latencies", [&]() -> Result<std::vector<LatencySeries>> {
    if (step_s != 0 && std::find(rollup_resolutions.begin(), rollup_resolutions.end(), step_s) == rollup_resolutions.end())
      return make_error("a latency series steps by window or by a rollup resolution, not " + std::to_string(step_s) + " s");
    pqxx::read_transaction tx(*conn_);
    const std::vector<OperationRow> ops = operations_in_scope(tx, host, target, operation);
    std::map<int, const OperationRow*> by_id;
    for (const OperationRow& op : ops) by_id[op.id] = &op;
    const std::array<int, 1> step{step_s};
    struct Point {
      std::int64_t start_us = 0;
      LatencyCells cells;
    };
    // By operation name, then by the start of its step (of its window when step_s is 0).
    std::map<std::string, std::map<std::int64_t, Point>> points;
    const std::int64_t step_us = static_cast<std::int64_t>(step_s) * 1'000'000;
    for (const LatencyPiece& piece : read_latency(tx, ops, range, step_s ? std::span<const int>(step) : std::span<const int>())) {
      const std::int64_t key = step_us ? piece.start_us - ((piece.start_us % step_us) + step_us) % step_us : piece.start_us;
      auto [it, fresh] = points[by_id.at(piece.operation_id)->name].try_emplace(key);
      Point& p = it->second;
      if (fresh) p.start_us = piece.start_us;
      profile::merge(p.cells.histogram, piece.cells.histogram);
      p.cells.threshold_ns = piece.cells.threshold_ns;
    }
    std::vector<LatencySeries> out;
    for (const auto& [name, steps] : points) {
      LatencySeries series{name, {}};
      for (const auto& [key, p] : steps) {
        const profile::LatencyHistogram& h = p.cells.histogram;
        series.points.push_back({from_epoch_us(p.start_us), h.count,
                                 profile::percentile(h, 0.50), profile::percentile(h, 0.95),
                                 profile::percentile(h, 0.99), h.max_ns, h.slow, p.cells.threshold_ns});
      }
      out.push_back(std::move(series));
    }
    return out;
  });
}

Result<profile::LatencyStats> Query::latency_health(const std::string& host, TimeRange range) {
  return guarded("cannot read latency health", [&]() -> Result<profile::LatencyStats> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::row row = tx.exec_params1(
        "SELECT sum(probe_calls)::bigint, sum(lost_no_entry)::bigint, sum(lost_unwound)::bigint,"
        "       sum(lost_map_full)::bigint, sum(statsd_packets)::bigint, sum(statsd_timings)::bigint,"
        "       sum(statsd_unknown)::bigint, sum(statsd_ignored)::bigint, sum(statsd_malformed)::bigint,"
        "       sum(statsd_oversized)::bigint"
        " FROM latency_health lh JOIN hosts h ON h.id = lh.host_id"
        " WHERE ($1 = '' OR h.name = $1) AND lh.window_start >= $2::timestamptz AND lh.window_start < $3::timestamptz",
        host, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    return profile::LatencyStats{as_count(row[0]), as_count(row[1]), as_count(row[2]), as_count(row[3]),
                                 as_count(row[4]), as_count(row[5]), as_count(row[6]), as_count(row[7]),
                                 as_count(row[8]), as_count(row[9])};
  });
}

Result<std::vector<AlertRecord>> Query::alerts(const std::string& host, TimeRange range, const AlertFilter& filter) {
  return guarded("cannot read alerts", [&]() -> Result<std::vector<AlertRecord>> {
    pqxx::read_transaction tx(*conn_);
    const std::string from = to_pg_timestamp(range.from), to = to_pg_timestamp(range.to);
    const pqxx::result rows = tx.exec_params(
        "SELECT a.fingerprint, h.name, a.rule, a.state, a.labels::text, a.annotations::text, a.value, " +
            epoch_us_sql("a.starts_at") + ", " + epoch_us_sql("a.ends_at") + ", " + epoch_us_sql("a.updated_at") +
            " FROM alerts a JOIN hosts h ON h.id = a.host_id"
            " WHERE ($1 = '' OR h.name = $1) AND (a.state <> 'inactive' OR EXISTS ("
            "   SELECT 1 FROM alert_events e WHERE e.fingerprint = a.fingerprint"
            "     AND e.at >= $2::timestamptz AND e.at < $3::timestamptz))"
            "   AND ($4 = '' OR a.labels->>'target' = $4) AND ($5 = '' OR a.state = $5)"
            " ORDER BY a.state = 'firing' DESC, a.updated_at DESC, a.fingerprint",
        host, from, to, filter.target, filter.state);
    std::vector<AlertRecord> out;
    std::unordered_map<std::string, std::size_t> index;
    const auto optional_time = [](const pqxx::field& f) {
      return f.is_null() ? std::optional<profile::TimePoint>() : from_epoch_us(f.as<std::int64_t>());
    };
    for (const auto& row : rows) {
      AlertRecord a;
      a.fingerprint = row[0].as<std::string>();
      a.host = row[1].as<std::string>();
      a.rule = row[2].as<std::string>();
      a.state = row[3].as<std::string>();
      a.labels = nlohmann::json::parse(row[4].as<std::string>()).get<std::map<std::string, std::string>>();
      a.annotations = nlohmann::json::parse(row[5].as<std::string>()).get<std::map<std::string, std::string>>();
      a.value = row[6].as<double>();
      a.starts_at = optional_time(row[7]);
      a.ends_at = optional_time(row[8]);
      a.updated_at = from_epoch_us(row[9].as<std::int64_t>());
      index[a.fingerprint] = out.size();
      out.push_back(std::move(a));
    }
    if (out.empty()) return out;
    std::string fingerprints = "{";
    for (const AlertRecord& a : out) fingerprints += (fingerprints.size() > 1 ? "," : "") + a.fingerprint;
    fingerprints += "}";
    const pqxx::result events = tx.exec_params(
        "SELECT fingerprint, " + epoch_us_sql("at") + ", state, value, summary FROM alert_events"
            " WHERE fingerprint = ANY($1::text[]) AND at >= $2::timestamptz AND at < $3::timestamptz ORDER BY at, id",
        fingerprints, from, to);
    for (const auto& row : events)
      out[index.at(row[0].as<std::string>())].history.push_back(
          {from_epoch_us(row[1].as<std::int64_t>()), row[2].as<std::string>(), row[3].as<double>(),
           row[4].as<std::string>()});
    const pqxx::result deliveries = tx.exec_params(
        "SELECT fingerprint, receiver, status, state, attempts, " + epoch_us_sql("created_at") + ", " +
            epoch_us_sql("done_at") + ", coalesce(last_error, '') FROM alert_outbox"
            " WHERE fingerprint = ANY($1::text[]) AND created_at >= $2::timestamptz AND created_at < $3::timestamptz"
            " ORDER BY id",
        fingerprints, from, to);
    for (const auto& row : deliveries)
      out[index.at(row[0].as<std::string>())].deliveries.push_back(
          {row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>(), row[4].as<std::int32_t>(),
           from_epoch_us(row[5].as<std::int64_t>()), optional_time(row[6]), row[7].as<std::string>()});
    return out;
  });
}

Result<std::vector<DeployRecord>> Query::deploys(const std::string& host, const std::string& target, TimeRange range) {
  return guarded("cannot read deploy markers", [&]() -> Result<std::vector<DeployRecord>> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::result rows = tx.exec_params(
        "SELECT h.name, t.name, " + epoch_us_sql("d.at") + ", d.summary, d.changes::text FROM deploy_markers d"
            " JOIN targets t ON t.id = d.target_id JOIN hosts h ON h.id = d.host_id"
            " WHERE ($1 = '' OR h.name = $1) AND ($2 = '' OR t.name = $2)"
            "   AND d.at >= $3::timestamptz AND d.at < $4::timestamptz ORDER BY d.at, d.id",
        host, target, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    std::vector<DeployRecord> out;
    for (const auto& row : rows) {
      DeployRecord d{row[0].as<std::string>(), row[1].as<std::string>(), from_epoch_us(row[2].as<std::int64_t>()),
                     row[3].as<std::string>(), {}};
      for (const auto& c : nlohmann::json::parse(row[4].as<std::string>()))
        d.changes.push_back({c.at("kind").get<std::string>(), c.at("path").get<std::string>(),
                             c.at("before").get<std::string>(), c.at("after").get<std::string>()});
      out.push_back(std::move(d));
    }
    return out;
  });
}

namespace {
constexpr const char* caches_in_scope =
    "SELECT c.id FROM caches c JOIN targets t ON t.id = c.target_id JOIN hosts h ON h.id = t.host_id"
    " WHERE t.name = $2 AND ($1 = '' OR h.name = $1) AND ($3 = '' OR c.name = $3)";
}  // namespace

Result<std::vector<CacheSummary>> Query::caches(const std::string& host, const std::string& target, TimeRange range) {
  return guarded("cannot read cache hit rates", [&]() -> Result<std::vector<CacheSummary>> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::result rows = tx.exec_params(
        "SELECT c.name, (array_agg(c.kind ORDER BY w.window_start DESC))[1],"
        "       (array_agg(c.spec ORDER BY w.window_start DESC))[1], sum(w.lookups)::bigint, sum(w.hits)::bigint,"
        "       sum(w.misses)::bigint, count(*)"
        " FROM cache_windows w JOIN caches c ON c.id = w.cache_id"
        " WHERE w.cache_id IN (" + std::string(caches_in_scope) + ")"
        "   AND w.window_start >= $4::timestamptz AND w.window_start < $5::timestamptz"
        " GROUP BY c.name ORDER BY c.name",
        host, target, std::string(), to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    std::vector<CacheSummary> out;
    for (const auto& row : rows)
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(), as_count(row[3]),
                     as_count(row[4]), as_count(row[5]), as_count(row[6])});
    return out;
  });
}

Result<std::vector<CachePoint>> Query::cache_series(const std::string& host, const std::string& target,
                                                    const std::string& cache, TimeRange range) {
  return guarded("cannot read cache hit rates", [&]() -> Result<std::vector<CachePoint>> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::result rows = tx.exec_params(
        "SELECT " + epoch_us_sql("w.window_start") + ", " + epoch_us_sql("max(w.window_end)") +
            ", sum(w.lookups)::bigint, sum(w.hits)::bigint, sum(w.misses)::bigint"
            " FROM cache_windows w WHERE w.cache_id IN (" + std::string(caches_in_scope) + ")"
            "   AND w.window_start >= $4::timestamptz AND w.window_start < $5::timestamptz"
            " GROUP BY w.window_start ORDER BY w.window_start",
        host, target, cache, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    std::vector<CachePoint> out;
    for (const auto& row : rows)
      out.push_back({from_epoch_us(row[0].as<std::int64_t>()), from_epoch_us(row[1].as<std::int64_t>()),
                     as_count(row[2]), as_count(row[3]), as_count(row[4])});
    return out;
  });
}

Result<CacheHealth> Query::cache_health(const std::string& host, TimeRange range) {
  return guarded("cannot read cache health", [&]() -> Result<CacheHealth> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::row row = tx.exec_params1(
        "SELECT count(*), (array_agg(page_cache_measured ORDER BY window_start DESC))[1],"
        "       (array_agg(page_cache_state ORDER BY window_start DESC))[1],"
        "       (array_agg(llc_measured ORDER BY window_start DESC))[1],"
        "       (array_agg(llc_state ORDER BY window_start DESC))[1],"
        "       sum(page_lookups)::bigint, sum(page_added)::bigint, sum(page_write_adds)::bigint,"
        "       sum(llc_references)::bigint, sum(llc_misses)::bigint, sum(statsd_counts)::bigint"
        " FROM cache_health ch JOIN hosts h ON h.id = ch.host_id"
        " WHERE ($1 = '' OR h.name = $1) AND ch.window_start >= $2::timestamptz AND ch.window_start < $3::timestamptz",
        host, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    CacheHealth out;
    out.windows = as_count(row[0]);
    if (out.windows == 0) return out;
    out.page_cache = {row[1].as<bool>(), row[2].as<std::string>()};
    out.llc = {row[3].as<bool>(), row[4].as<std::string>()};
    out.host = {as_count(row[5]), as_count(row[6]), as_count(row[7]), as_count(row[8]), as_count(row[9])};
    out.statsd_counts = as_count(row[10]);
    return out;
  });
}

Result<std::vector<HostProbes>> Query::probe_states(const std::string& host, TimeRange range) {
  return guarded("cannot read the probe states", [&]() -> Result<std::vector<HostProbes>> {
    pqxx::read_transaction tx(*conn_);
    // A database only an older perfwatchd has written to has no such table yet: no states to show.
    if (tx.exec1("SELECT to_regclass('host_windows') IS NULL")[0].as<bool>()) return std::vector<HostProbes>{};
    const pqxx::result rows = tx.exec_params(
        "SELECT DISTINCT ON (h.name) h.name, " + epoch_us_sql("hw.window_end") + ", hw.probes::text"
        " FROM host_windows hw JOIN hosts h ON h.id = hw.host_id"
        " WHERE ($1 = '' OR h.name = $1) AND hw.window_start >= $2::timestamptz AND hw.window_start < $3::timestamptz"
        "   AND hw.probes <> '{}'::jsonb"  // windows replayed from a spool older than the states
        " ORDER BY h.name, hw.window_start DESC",
        host, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    std::vector<HostProbes> out;
    for (const auto& row : rows) {
      HostProbes h{row[0].as<std::string>(), from_epoch_us(row[1].as<std::int64_t>()), {}};
      const nlohmann::json probes = nlohmann::json::parse(row[2].as<std::string>());
      for (profile::ProbeFamily family : profile::all_probe_families) {
        const auto it = probes.find(std::string(profile::to_string(family)));
        if (it == probes.end() || !it->is_object()) continue;
        profile::ProbeState state{family, profile::ProbeStatus::off, it->value("detail", "")};
        if (!profile::parse_probe_status(it->value("status", ""), state.status)) continue;
        h.probes.push_back(std::move(state));
      }
      out.push_back(std::move(h));
    }
    return out;
  });
}

}  // namespace perfwatch::storage
