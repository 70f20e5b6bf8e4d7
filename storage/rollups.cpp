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

// The bucket of a timestamptz expression at the resolution in `res` (seconds), as SQL.
std::string bucket_sql(const std::string& column, const std::string& res) {
  return "('epoch'::timestamptz + floor(extract(epoch FROM " + column + ") / " + res + ") * " + res +
         " * interval '1 second')";
}

// The windows of one bucket, for its fingerprint (count, samples).
constexpr const char* bucket_windows_sql =
    "SELECT count(*)::bigint, coalesce(sum(w.samples), 0)::bigint FROM windows w"
    " WHERE w.target_id = r.target_id AND w.window_start >= r.bucket_start"
    "   AND w.window_start < r.bucket_start + r.resolution * interval '1 second'";

void build_bucket(pqxx::connection& conn, int target, int resolution, const std::string& start) {
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

}  // namespace

Result<RollupStats> refresh_rollups(pqxx::connection& conn, profile::TimePoint now, std::chrono::seconds settle,
                                    int max_buckets) {
  try {
    RollupStats stats;
    {
      pqxx::work tx(conn, "rollup_retention");
      const pqxx::result gone = tx.exec(
          "WITH gone AS (DELETE FROM rollup_buckets r WHERE NOT EXISTS (SELECT 1 FROM windows w"
          "   WHERE w.target_id = r.target_id AND w.window_start >= r.bucket_start"
          "     AND w.window_start < r.bucket_start + r.resolution * interval '1 second')"
          "   RETURNING target_id, resolution, bucket_start)"
          " DELETE FROM rollup_samples s USING gone g WHERE s.target_id = g.target_id"
          "   AND s.resolution = g.resolution AND s.bucket_start = g.bucket_start RETURNING 1");
      stats.buckets_dropped = gone.affected_rows();
      tx.commit();
    }
    const std::string cutoff = to_pg_timestamp(now - settle);
    for (int resolution : rollup_resolutions) {
      std::vector<std::pair<int, std::string>> stale;
      {
        pqxx::read_transaction tx(conn, "rollup_plan");
        const std::string res = std::to_string(resolution);
        const pqxx::result rows = tx.exec_params(
            "WITH w AS (SELECT target_id, " + bucket_sql("window_start", res) + " AS bucket_start,"
            "                  count(*)::bigint AS windows, sum(samples)::bigint AS samples"
            "           FROM windows GROUP BY 1, 2)"
            " SELECT w.target_id, w.bucket_start::text FROM w"
            " LEFT JOIN rollup_buckets r ON r.target_id = w.target_id AND r.resolution = $1::integer"
            "   AND r.bucket_start = w.bucket_start"
            " WHERE w.bucket_start + $1::integer * interval '1 second' <= $2::timestamptz"
            "   AND (r.windows IS DISTINCT FROM w.windows OR r.samples IS DISTINCT FROM w.samples)"
            " ORDER BY w.bucket_start LIMIT $3",
            resolution, cutoff, max_buckets);
        for (const auto& row : rows) stale.emplace_back(row[0].as<int>(), row[1].as<std::string>());
      }
      for (const auto& [target, start] : stale) build_bucket(conn, target, resolution, start);
      stats.buckets_built += stale.size();
    }
    return stats;
  } catch (const std::exception& e) {
    return make_error(std::string("cannot refresh rollups: ") + e.what());
  }
}

RollupPlan plan_rollups(pqxx::transaction_base& tx, const std::vector<int>& target_ids, profile::TimePoint from,
                        profile::TimePoint to) {
  const pqxx::result rows = tx.exec_params(
      "SELECT r.target_id, r.resolution, " + epoch_us_sql("r.bucket_start") + " FROM rollup_buckets r"
      " WHERE r.target_id = ANY($1::integer[]) AND r.bucket_start >= $2::timestamptz"
      "   AND r.bucket_start + r.resolution * interval '1 second' <= $3::timestamptz"
      "   AND (r.windows, r.samples) = (" + std::string(bucket_windows_sql) + ")"
      " ORDER BY r.target_id, r.resolution DESC, r.bucket_start",
      int_array_literal(target_ids), to_pg_timestamp(from), to_pg_timestamp(to));

  // Per target: covered [start, end) pieces in µs, coarse buckets first, finer ones only where no coarse one is.
  std::map<int, std::vector<std::pair<std::int64_t, std::int64_t>>> covered;
  for (int t : target_ids) covered[t];
  RollupPlan plan;
  for (const auto& row : rows) {
    const int target = row[0].as<int>();
    const int resolution = row[1].as<int>();
    const std::int64_t start = row[2].as<std::int64_t>();
    const std::int64_t end = start + static_cast<std::int64_t>(resolution) * 1'000'000;
    auto& pieces = covered[target];
    const bool overlaps = std::any_of(pieces.begin(), pieces.end(),
                                      [&](const auto& p) { return start < p.second && p.first < end; });
    if (overlaps) continue;
    pieces.emplace_back(start, end);
    plan.buckets.push_back({target, resolution, from_epoch_us(start)});
  }
  for (auto& [target, pieces] : covered) {
    std::sort(pieces.begin(), pieces.end());
    std::int64_t cursor = to_epoch_us(from);
    for (const auto& [start, end] : pieces) {
      if (start > cursor) plan.raw.push_back({target, from_epoch_us(cursor), from_epoch_us(start)});
      cursor = std::max(cursor, end);
    }
    if (cursor < to_epoch_us(to)) plan.raw.push_back({target, from_epoch_us(cursor), to});
  }
  return plan;
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
