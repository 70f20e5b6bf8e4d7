#include "storage/query.h"

#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <map>
#include <nlohmann/json.hpp>
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
    // One branch per piece with constant bounds, so the planner prunes partitions and uses the keys.
    const RollupPlan plan = plan_rollups(tx, target_ids, range.from, range.to);
    std::vector<std::string> params, branches;
    auto param = [&](std::string value, const char* type) {
      params.push_back(std::move(value));
      return "$" + std::to_string(params.size()) + "::" + type;
    };
    std::map<std::pair<int, int>, std::string> bucket_starts;  // (target, resolution) -> timestamptz[] literal
    for (const auto& b : plan.buckets) {
      std::string& list = bucket_starts[{b.target_id, b.resolution}];
      list += (list.empty() ? "{\"" : ",\"") + to_pg_timestamp(b.start) + "\"";
    }
    for (auto& [key, list] : bucket_starts)
      branches.push_back("SELECT stack_id, count FROM rollup_samples WHERE target_id = " +
                         param(std::to_string(key.first), "integer") + " AND resolution = " +
                         param(std::to_string(key.second), "integer") + " AND bucket_start = ANY(" +
                         param(list + "}", "timestamptz[]") + ")");
    for (const auto& r : plan.raw)
      branches.push_back("SELECT stack_id, count FROM samples WHERE target_id = " +
                         param(std::to_string(r.target_id), "integer") + " AND window_start >= " +
                         param(to_pg_timestamp(r.from), "timestamptz") + " AND window_start < " +
                         param(to_pg_timestamp(r.to), "timestamptz"));
    if (branches.empty()) return profile::Profile{};
    std::string pieces;
    for (const std::string& b : branches) pieces += (pieces.empty() ? "" : " UNION ALL ") + b;
    // Sum per stack first, then fetch each stack once.
    const pqxx::result stacks = tx.exec_params(
        "SELECT st.frame_ids::text, agg.count FROM (SELECT stack_id, sum(count)::bigint AS count FROM (" + pieces +
            ") pieces GROUP BY stack_id) agg JOIN stacks st ON st.id = agg.stack_id",
        pqxx::prepare::make_dynamic_params(params));

    profile::Profile out;
    std::unordered_map<std::int64_t, std::uint32_t> frame_index;
    std::vector<std::int64_t> frame_ids;
    for (const auto& row : stacks) {
      profile::Stack stack;
      stack.count = as_count(row[1]);
      for (std::int64_t id : parse_int_array(row[0].as<std::string>())) {
        auto [it, fresh] = frame_index.emplace(id, static_cast<std::uint32_t>(frame_ids.size()));
        if (fresh) frame_ids.push_back(id);
        stack.frame_ids.push_back(it->second);
      }
      out.stacks.push_back(std::move(stack));
    }
    out.frames.resize(frame_ids.size());
    if (!frame_ids.empty()) {
      const pqxx::result frames = tx.exec_params("SELECT id, kind, name, module FROM frames WHERE id = ANY($1::bigint[])",
                                                 int_array_literal(frame_ids));
      for (const auto& row : frames) {
        profile::Frame& f = out.frames[frame_index.at(row[0].as<std::int64_t>())];
        f.kind = static_cast<profile::FrameKind>(row[1].as<int>());
        f.name = row[2].as<std::string>();
        f.module = row[3].as<std::string>();
      }
    }
    return out;
  });
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
// The operations a latency query covers: the target's, on the host (or every host), by name.
constexpr const char* operations_in_scope =
    "SELECT o.id FROM operations o JOIN targets t ON t.id = o.target_id JOIN hosts h ON h.id = t.host_id"
    " WHERE t.name = $2 AND ($1 = '' OR h.name = $1) AND ($3 = '' OR o.name = $3)";
}  // namespace

Result<std::vector<OperationLatency>> Query::latency(const std::string& host, const std::string& target,
                                                     const std::string& operation, TimeRange range) {
  return guarded("cannot read latencies", [&]() -> Result<std::vector<OperationLatency>> {
    pqxx::read_transaction tx(*conn_);
    const std::string from = to_pg_timestamp(range.from), to = to_pg_timestamp(range.to);
    // Totals per operation name (an operation of several hosts is one), and the newest window's grading.
    const pqxx::result totals = tx.exec_params(
        "SELECT o.name, sum(l.calls)::bigint, sum(l.sum_ns)::bigint, max(l.max_ns), sum(l.slow)::bigint, count(*),"
        "       (array_agg(o.source ORDER BY l.window_start DESC))[1], (array_agg(o.spec ORDER BY l.window_start DESC))[1],"
        "       (array_agg(l.tier ORDER BY l.window_start DESC))[1],"
        "       (array_agg(l.threshold_ns ORDER BY l.window_start DESC))[1]"
        " FROM latency l JOIN operations o ON o.id = l.operation_id"
        " WHERE l.operation_id IN (" + std::string(operations_in_scope) + ")"
        "   AND l.window_start >= $4::timestamptz AND l.window_start < $5::timestamptz"
        " GROUP BY o.name ORDER BY o.name",
        host, target, operation, from, to);
    std::vector<OperationLatency> out;
    std::map<std::string, std::size_t> index;
    for (const auto& row : totals) {
      OperationLatency op;
      op.name = row[0].as<std::string>();
      op.histogram.count = as_count(row[1]);
      op.histogram.sum_ns = as_count(row[2]);
      op.histogram.max_ns = as_count(row[3]);
      op.histogram.slow = as_count(row[4]);
      op.windows = as_count(row[5]);
      op.source = row[6].as<std::string>();
      op.spec = row[7].as<std::string>();
      const int tier = row[8].as<int>();
      op.tier = tier >= 1 && tier <= 5 ? static_cast<profile::Tier>(tier) : profile::Tier::none;
      op.threshold_ns = as_count(row[9]);
      index[op.name] = out.size();
      out.push_back(std::move(op));
    }
    // Bucket counts summed over the range: the merged histogram.
    const pqxx::result buckets = tx.exec_params(
        "SELECT o.name, u.bucket, sum(u.count)::bigint"
        " FROM latency l JOIN operations o ON o.id = l.operation_id,"
        "      unnest(l.bucket_index, l.bucket_count) AS u(bucket, count)"
        " WHERE l.operation_id IN (" + std::string(operations_in_scope) + ")"
        "   AND l.window_start >= $4::timestamptz AND l.window_start < $5::timestamptz"
        "   AND l.scheme = $6"
        " GROUP BY o.name, u.bucket ORDER BY o.name, u.bucket",
        host, target, operation, from, to, profile::latency_scheme_version);
    for (const auto& row : buckets) {
      auto it = index.find(row[0].as<std::string>());
      const int bucket = row[1].as<int>();
      if (it == index.end() || bucket < 0 || bucket >= static_cast<int>(profile::latency_bucket_count)) continue;
      out[it->second].histogram.buckets.emplace_back(static_cast<std::uint32_t>(bucket), as_count(row[2]));
    }
    return out;
  });
}

Result<std::vector<LatencyPoint>> Query::latency_series(const std::string& host, const std::string& target,
                                                        const std::string& operation, TimeRange range) {
  return guarded("cannot read latencies", [&]() -> Result<std::vector<LatencyPoint>> {
    pqxx::read_transaction tx(*conn_);
    const pqxx::result rows = tx.exec_params(
        "SELECT " + epoch_us_sql("l.window_start") + ", " + epoch_us_sql("max(l.window_end)") +
            ", sum(l.calls)::bigint, max(l.p50_ns), max(l.p95_ns), max(l.p99_ns), max(l.max_ns), sum(l.slow)::bigint"
            " FROM latency l WHERE l.operation_id IN (" + std::string(operations_in_scope) + ")"
            "   AND l.window_start >= $4::timestamptz AND l.window_start < $5::timestamptz"
            " GROUP BY l.window_start ORDER BY l.window_start",
        host, target, operation, to_pg_timestamp(range.from), to_pg_timestamp(range.to));
    std::vector<LatencyPoint> out;
    for (const auto& row : rows)
      out.push_back({from_epoch_us(row[0].as<std::int64_t>()), from_epoch_us(row[1].as<std::int64_t>()),
                     as_count(row[2]), as_count(row[3]), as_count(row[4]), as_count(row[5]), as_count(row[6]),
                     as_count(row[7])});
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

}  // namespace perfwatch::storage
