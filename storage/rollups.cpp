#include "storage/rollups.h"

#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>
#include <map>

#include "common/log.h"
#include "storage/pg_codec.h"

namespace perfwatch::storage {
namespace {

// The tables of a kind: `buckets` holds one row per (key, resolution, bucket_start) with the
// fingerprint of what it summed (windows, and the sum of `total` over them); `source` holds one row
// per key and window.
struct KindTables {
  const char* buckets;
  const char* key;
  const char* source;
  const char* total;
};

const KindTables& tables(RollupKind kind) {
  static constexpr KindTables samples{"rollup_buckets", "target_id", "windows", "samples"};
  static constexpr KindTables latency{"latency_rollups", "operation_id", "latency", "calls"};
  return kind == RollupKind::samples ? samples : latency;
}

// The bucket of a timestamptz expression at the resolution in `res` (seconds), as SQL.
std::string bucket_sql(const std::string& column, const std::string& res) {
  return "('epoch'::timestamptz + floor(extract(epoch FROM " + column + ") / " + res + ") * " + res +
         " * interval '1 second')";
}

// Rows of the kind's source table `s` inside the bucket row `r`.
std::string in_bucket_sql(const KindTables& k) {
  return std::string("s.") + k.key + " = r." + k.key +
         " AND s.window_start >= r.bucket_start AND s.window_start < r.bucket_start + r.resolution * interval '1 second'";
}

void build_samples_bucket(pqxx::connection& conn, int target, int resolution, const std::string& start) {
  // One snapshot for samples and windows: the fingerprint describes exactly what was summed.
  pqxx::transaction<pqxx::isolation_level::repeatable_read> tx(conn, "rollup");
  const std::string end = "$3::timestamptz + $2::integer * interval '1 second'";
  tx.exec_params0("DELETE FROM rollup_samples WHERE target_id = $1::integer AND resolution = $2::integer"
                  " AND bucket_start = $3::timestamptz",
                  target, resolution, start);
  tx.exec_params0("INSERT INTO rollup_samples (target_id, resolution, bucket_start, stack_id, count)"
                  " SELECT $1::integer, $2::integer, $3::timestamptz, stack_id, sum(count) FROM samples"
                  " WHERE target_id = $1::integer AND window_start >= $3::timestamptz AND window_start < " + end +
                  " GROUP BY stack_id",
                  target, resolution, start);
  tx.exec_params0("INSERT INTO rollup_buckets (target_id, resolution, bucket_start, windows, samples)"
                  " SELECT $1::integer, $2::integer, $3::timestamptz, count(*), coalesce(sum(samples), 0) FROM windows"
                  " WHERE target_id = $1::integer AND window_start >= $3::timestamptz AND window_start < " + end +
                  " ON CONFLICT (target_id, resolution, bucket_start)"
                  " DO UPDATE SET windows = EXCLUDED.windows, samples = EXCLUDED.samples",
                  target, resolution, start);
  tx.commit();
}

// The operation's windows in the bucket merged into one histogram (in C++: the bucket scheme is
// probes/latency_hist.h's), with the newest window's grading.
void build_latency_bucket(pqxx::connection& conn, int operation, int resolution, const std::string& start) {
  pqxx::transaction<pqxx::isolation_level::repeatable_read> tx(conn, "rollup");
  const pqxx::result rows = tx.exec_params(
      "SELECT " + std::string(latency_columns) + " FROM latency WHERE operation_id = $1::integer"
      " AND window_start >= $3::timestamptz AND window_start < $3::timestamptz + $2::integer * interval '1 second'"
      " ORDER BY window_start",
      operation, resolution, start);
  LatencyCells merged;
  for (const auto& row : rows) {
    LatencyCells cells = read_latency_columns(row, 0);
    profile::merge(merged.histogram, cells.histogram);
    merged.tier = cells.tier;
    merged.threshold_ns = cells.threshold_ns;
  }
  const profile::LatencyHistogram& h = merged.histogram;
  const auto [index, counts] = bucket_array_literals(h);
  auto i64 = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
  tx.exec_params0(
      "INSERT INTO latency_rollups (operation_id, resolution, bucket_start, windows, calls, sum_ns, max_ns, slow, tier,"
      " threshold_ns, scheme, bucket_index, bucket_count)"
      " VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12::smallint[], $13::bigint[])"
      " ON CONFLICT (operation_id, resolution, bucket_start) DO UPDATE SET windows = EXCLUDED.windows,"
      " calls = EXCLUDED.calls, sum_ns = EXCLUDED.sum_ns, max_ns = EXCLUDED.max_ns, slow = EXCLUDED.slow,"
      " tier = EXCLUDED.tier, threshold_ns = EXCLUDED.threshold_ns, scheme = EXCLUDED.scheme,"
      " bucket_index = EXCLUDED.bucket_index, bucket_count = EXCLUDED.bucket_count",
      operation, resolution, start, static_cast<std::int64_t>(rows.size()), i64(h.count), i64(h.sum_ns),
      i64(h.max_ns), i64(h.slow), static_cast<int>(merged.tier), i64(merged.threshold_ns),
      profile::latency_scheme_version, index, counts);
  tx.commit();
}

// Drops the kind's buckets whose windows are all gone (retention); returns how many.
std::uint64_t drop_orphaned_buckets(pqxx::connection& conn, RollupKind kind) {
  const KindTables& k = tables(kind);
  pqxx::work tx(conn, "rollup_retention");
  const std::string gone = std::string("WITH gone AS (DELETE FROM ") + k.buckets + " r WHERE NOT EXISTS (SELECT 1 FROM " +
                           k.source + " s WHERE " + in_bucket_sql(k) + ") RETURNING " + k.key +
                           ", resolution, bucket_start)";
  // The samples of a dropped bucket go with it.
  const std::string details = kind == RollupKind::samples
                                  ? ", details AS (DELETE FROM rollup_samples d USING gone g WHERE d.target_id = g.target_id"
                                    " AND d.resolution = g.resolution AND d.bucket_start = g.bucket_start)"
                                  : "";
  const std::uint64_t dropped = tx.exec1(gone + details + " SELECT count(*) FROM gone")[0].as<std::uint64_t>();
  tx.commit();
  return dropped;
}

// Complete buckets (ended before `cutoff`) of the kind whose rollup is missing or stale, oldest first.
std::vector<std::pair<int, std::string>> stale_buckets(pqxx::connection& conn, RollupKind kind, int resolution,
                                                       const std::string& cutoff, int limit) {
  const KindTables& k = tables(kind);
  const std::string res = std::to_string(resolution);
  pqxx::read_transaction tx(conn, "rollup_plan");
  const pqxx::result rows = tx.exec_params(
      std::string("WITH s AS (SELECT ") + k.key + " AS id, " + bucket_sql("window_start", res) + " AS bucket_start,"
      "                  count(*)::bigint AS windows, sum(" + k.total + ")::bigint AS total"
      "           FROM " + k.source + " GROUP BY 1, 2)"
      " SELECT s.id, s.bucket_start::text FROM s"
      " LEFT JOIN " + k.buckets + " r ON r." + k.key + " = s.id AND r.resolution = $1::integer"
      "   AND r.bucket_start = s.bucket_start"
      " WHERE s.bucket_start + $1::integer * interval '1 second' <= $2::timestamptz"
      "   AND (r.windows IS DISTINCT FROM s.windows OR r." + k.total + " IS DISTINCT FROM s.total)"
      " ORDER BY s.bucket_start LIMIT $3",
      resolution, cutoff, limit);
  std::vector<std::pair<int, std::string>> out;
  for (const auto& row : rows) out.emplace_back(row[0].as<int>(), row[1].as<std::string>());
  return out;
}

}  // namespace

Result<RollupStats> refresh_rollups(pqxx::connection& conn, profile::TimePoint now, std::chrono::seconds settle,
                                    int max_buckets) {
  try {
    RollupStats stats;
    const std::string cutoff = to_pg_timestamp(now - settle);
    for (RollupKind kind : {RollupKind::samples, RollupKind::latency}) {
      stats.buckets_dropped += drop_orphaned_buckets(conn, kind);
      for (int resolution : rollup_resolutions) {
        const int left = max_buckets - static_cast<int>(stats.buckets_built);
        if (left <= 0) return stats;
        for (const auto& [id, start] : stale_buckets(conn, kind, resolution, cutoff, left)) {
          if (kind == RollupKind::samples) build_samples_bucket(conn, id, resolution, start);
          else build_latency_bucket(conn, id, resolution, start);
          ++stats.buckets_built;
        }
      }
    }
    return stats;
  } catch (const std::exception& e) {
    return make_error(std::string("cannot refresh rollups: ") + e.what());
  }
}

RollupPlan plan_rollups(pqxx::transaction_base& tx, RollupKind kind, const std::vector<int>& ids,
                        profile::TimePoint from, profile::TimePoint to, std::span<const int> resolutions) {
  const KindTables& k = tables(kind);
  // Fresh: the bucket's fingerprint still matches its windows.
  const pqxx::result rows = tx.exec_params(
      std::string("SELECT r.") + k.key + ", r.resolution, " + epoch_us_sql("r.bucket_start") + " FROM " + k.buckets +
          " r WHERE r." + k.key + " = ANY($1::integer[]) AND r.resolution = ANY($4::integer[])"
          "   AND r.bucket_start >= $2::timestamptz"
          "   AND r.bucket_start + r.resolution * interval '1 second' <= $3::timestamptz"
          "   AND (r.windows, r." + k.total + ") = (SELECT count(*)::bigint, coalesce(sum(s." + k.total + "), 0)::bigint"
          "                                   FROM " + k.source + " s WHERE " + in_bucket_sql(k) + ")"
          " ORDER BY r." + k.key + ", r.resolution DESC, r.bucket_start",
      int_array_literal(ids), to_pg_timestamp(from), to_pg_timestamp(to), int_array_literal(resolutions));

  // Per key: covered [start, end) pieces in µs, coarse buckets first, finer ones only where no coarse one is.
  std::map<int, std::vector<std::pair<std::int64_t, std::int64_t>>> covered;
  for (int id : ids) covered[id];
  RollupPlan plan;
  for (const auto& row : rows) {
    const int id = row[0].as<int>();
    const int resolution = row[1].as<int>();
    const std::int64_t start = row[2].as<std::int64_t>();
    const std::int64_t end = start + static_cast<std::int64_t>(resolution) * 1'000'000;
    auto& pieces = covered[id];
    const bool overlaps = std::any_of(pieces.begin(), pieces.end(),
                                      [&](const auto& p) { return start < p.second && p.first < end; });
    if (overlaps) continue;
    pieces.emplace_back(start, end);
    plan.buckets.push_back({id, resolution, from_epoch_us(start)});
  }
  for (auto& [id, pieces] : covered) {
    std::sort(pieces.begin(), pieces.end());
    std::int64_t cursor = to_epoch_us(from);
    for (const auto& [start, end] : pieces) {
      if (start > cursor) plan.raw.push_back({id, from_epoch_us(cursor), from_epoch_us(start)});
      cursor = std::max(cursor, end);
    }
    if (cursor < to_epoch_us(to)) plan.raw.push_back({id, from_epoch_us(cursor), to});
  }
  return plan;
}

PlanQuery plan_query(const RollupPlan& plan, RollupKind kind, const std::string& bucket_select,
                     const std::string& raw_select) {
  const std::string key = tables(kind).key;
  PlanQuery q;
  auto param = [&](std::string value, const char* type) {
    q.params.push_back(std::move(value));
    return "$" + std::to_string(q.params.size()) + "::" + type;
  };
  std::vector<std::string> branches;
  std::map<std::pair<int, int>, std::string> bucket_starts;  // (key, resolution) -> timestamptz[] literal
  for (const auto& b : plan.buckets) {
    std::string& list = bucket_starts[{b.id, b.resolution}];
    list += (list.empty() ? "{\"" : ",\"") + to_pg_timestamp(b.start) + "\"";
  }
  for (auto& [id_resolution, list] : bucket_starts)
    branches.push_back(bucket_select + " WHERE " + key + " = " + param(std::to_string(id_resolution.first), "integer") +
                       " AND resolution = " + param(std::to_string(id_resolution.second), "integer") +
                       " AND bucket_start = ANY(" + param(list + "}", "timestamptz[]") + ")");
  for (const auto& r : plan.raw)
    branches.push_back(raw_select + " WHERE " + key + " = " + param(std::to_string(r.id), "integer") +
                       " AND window_start >= " + param(to_pg_timestamp(r.from), "timestamptz") +
                       " AND window_start < " + param(to_pg_timestamp(r.to), "timestamptz"));
  for (const std::string& b : branches) q.sql += (q.sql.empty() ? "" : " UNION ALL ") + b;
  return q;
}

LatencyCells read_latency_columns(const pqxx::row& row, int first) {
  auto count = [&](int i) { return row[first + i].is_null() ? 0 : static_cast<std::uint64_t>(row[first + i].as<std::int64_t>()); };
  LatencyCells cells;
  profile::LatencyHistogram& h = cells.histogram;
  h.count = count(0);
  h.sum_ns = count(1);
  h.max_ns = count(2);
  h.slow = count(3);
  const int tier = row[first + 4].as<int>();
  cells.tier = tier >= 1 && tier <= 5 ? static_cast<profile::Tier>(tier) : profile::Tier::none;
  cells.threshold_ns = count(5);
  // Buckets of another scheme cannot be merged with these; counts, sum and max still can.
  if (row[first + 6].as<int>() == profile::latency_scheme_version)
    read_bucket_arrays(row[first + 7].c_str(), row[first + 8].c_str(), h);
  return cells;
}

RollupWorker::RollupWorker(ConnectOptions options, std::chrono::seconds interval)
    : options_(std::move(options)), interval_(interval), thread_([this] { run(); }) {}

RollupWorker::~RollupWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RollupWorker::run() {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_lock lock(mutex_);
  bool backlog = false;
  // Waits first: at start-up the writer is still migrating the schema this reads.
  while (backlog || !wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    if (stopping_) break;
    lock.unlock();
    backlog = false;
    if (!conn || !conn->is_open()) {
      auto c = connect_database(options_, /*migrate=*/false);
      if (c) conn = std::move(*c);
      else log::debug("rollups: database unavailable", {{"error", c.error().message}});
    }
    if (conn) {
      constexpr int batch = 500;
      auto r = refresh_rollups(*conn, profile::Clock::now(), std::chrono::seconds(60), batch);
      if (!r) {
        log::warn("rollup refresh failed", {{"error", r.error().message}});
        conn.reset();
      } else {
        if (r->buckets_built || r->buckets_dropped)
          log::debug("rollups refreshed", {{"built", r->buckets_built}, {"dropped", r->buckets_dropped}});
        backlog = r->buckets_built >= batch;  // first start, or after a long outage: go on at once
      }
    }
    lock.lock();
  }
}

}  // namespace perfwatch::storage
