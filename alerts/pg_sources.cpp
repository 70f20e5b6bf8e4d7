#include "alerts/pg_sources.h"

#include <algorithm>
#include <map>
#include <pqxx/result>
#include <pqxx/transaction>

#include "storage/pg_codec.h"

namespace perfwatch::alerts {
namespace {

using storage::epoch_us_sql;
using storage::from_epoch_us;
using storage::guarded;
using storage::to_pg_timestamp;

// The target's ids on the host (one per host and name).
const char* const target_ids_sql =
    "SELECT t.id FROM targets t JOIN hosts h ON h.id = t.host_id WHERE h.name = $1 AND t.name = $2";

std::string tier_text(int tier) { return tier >= 1 && tier <= 5 ? "T" + std::to_string(tier) : std::string(); }

std::uint64_t count_of(const pqxx::field& f) { return f.is_null() ? 0 : static_cast<std::uint64_t>(f.as<std::int64_t>()); }

class PgLatencySource final : public LatencySource {
 public:
  explicit PgLatencySource(pqxx::connection& conn) : conn_(conn) {}

  Result<std::vector<LatencyWindow>> windows(const std::string& host, TimePoint after, TimePoint until) override {
    return guarded("cannot read latencies", [&]() -> Result<std::vector<LatencyWindow>> {
      pqxx::read_transaction tx(conn_);
      const pqxx::result rows = tx.exec_params(
          "SELECT t.name, o.name, l.tier, l.threshold_ns, " + epoch_us_sql("l.window_start") + ", " +
              epoch_us_sql("l.window_end") +
              ", l.calls, l.slow, l.p50_ns, l.p95_ns, l.p99_ns, l.max_ns"
              " FROM latency l JOIN operations o ON o.id = l.operation_id JOIN targets t ON t.id = o.target_id"
              " JOIN hosts h ON h.id = l.host_id"
              " WHERE h.name = $1 AND l.window_start > $2::timestamptz AND l.window_start <= $3::timestamptz"
              " ORDER BY l.window_start, t.name, o.name",
          host, to_pg_timestamp(after), to_pg_timestamp(until));
      std::vector<LatencyWindow> out;
      for (const auto& row : rows)
        out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), tier_text(row[2].as<int>()),
                       count_of(row[3]), from_epoch_us(row[4].as<std::int64_t>()),
                       from_epoch_us(row[5].as<std::int64_t>()), count_of(row[6]), count_of(row[7]), count_of(row[8]),
                       count_of(row[9]), count_of(row[10]), count_of(row[11])});
      return out;
    });
  }

  Result<std::vector<LatencyTotals>> totals(const std::string& host, TimePoint end,
                                            std::span<const Duration> spans) override {
    return guarded("cannot read latency totals", [&]() -> Result<std::vector<LatencyTotals>> {
      if (spans.empty()) return std::vector<LatencyTotals>{};
      // One pass over the longest span; each span's sums filter on its own start (the text only
      // depends on how many spans there are).
      std::vector<TimePoint> starts;
      for (Duration span : spans) starts.push_back(end - std::chrono::duration_cast<profile::Clock::duration>(span));
      std::string sums, starts_literal = "{";
      for (std::size_t i = 1; i <= spans.size(); ++i) {
        const std::string from = "(p.starts)[" + std::to_string(i) + "]";
        sums += ", (sum(l.calls) FILTER (WHERE l.window_start >= " + from + "))::bigint";
        sums += ", (sum(l.slow) FILTER (WHERE l.window_start >= " + from + "))::bigint";
        starts_literal += (i > 1 ? "," : "") + ("\"" + to_pg_timestamp(starts[i - 1]) + "\"");
      }
      starts_literal += "}";
      pqxx::read_transaction tx(conn_);
      // The operation's newest grading stands for the whole range.
      const pqxx::result rows = tx.exec_params(
          "SELECT t.name, o.name, (array_agg(l.tier ORDER BY l.window_start DESC))[1],"
          "       (array_agg(l.threshold_ns ORDER BY l.window_start DESC))[1]" + sums +
              " FROM latency l JOIN operations o ON o.id = l.operation_id JOIN targets t ON t.id = o.target_id"
              " JOIN hosts h ON h.id = l.host_id CROSS JOIN (SELECT $4::timestamptz[] AS starts) p"
              " WHERE h.name = $1 AND l.window_start >= $2::timestamptz AND l.window_start < $3::timestamptz"
              " GROUP BY t.name, o.name ORDER BY t.name, o.name",
          host, to_pg_timestamp(*std::min_element(starts.begin(), starts.end())), to_pg_timestamp(end),
          starts_literal);
      std::vector<LatencyTotals> out;
      for (const auto& row : rows) {
        LatencyTotals t{row[0].as<std::string>(), row[1].as<std::string>(), tier_text(row[2].as<int>()),
                        count_of(row[3]), {}};
        for (pqxx::row::size_type i = 0; i < spans.size(); ++i)
          t.spans.push_back({count_of(row[4 + 2 * i]), count_of(row[5 + 2 * i])});
        out.push_back(std::move(t));
      }
      return out;
    });
  }

 private:
  pqxx::connection& conn_;
};

class PgProfileSource final : public ProfileSource {
 public:
  explicit PgProfileSource(pqxx::connection& conn) : conn_(conn) {}

  Result<std::vector<CpuWindow>> windows(const std::string& host, const std::string& target, TimePoint after,
                                         TimePoint until, FunctionTable& functions) override {
    return guarded("cannot read CPU profiles", [&]() -> Result<std::vector<CpuWindow>> {
      pqxx::read_transaction tx(conn_);
      const std::string from = to_pg_timestamp(after), to = to_pg_timestamp(until);
      const pqxx::result windows = tx.exec_params(
          "SELECT " + epoch_us_sql("w.window_start") + ", " + epoch_us_sql("w.window_end") +
              ", w.samples FROM windows w WHERE w.target_id IN (" + target_ids_sql +
              ") AND w.window_start > $3::timestamptz AND w.window_start <= $4::timestamptz ORDER BY w.window_start",
          host, target, from, to);
      std::vector<CpuWindow> out;
      std::map<std::int64_t, std::size_t> by_start;
      for (const auto& row : windows) {
        const std::int64_t start = row[0].as<std::int64_t>();
        by_start[start] = out.size();
        out.push_back({from_epoch_us(start), from_epoch_us(row[1].as<std::int64_t>()),
                       static_cast<std::uint64_t>(row[2].as<std::int64_t>()), {}});
      }
      if (out.empty()) return out;
      // Per window and function: samples with it as the leaf, and with it anywhere (once per stack).
      // A function is its kind, name and module file name (a Python frame's module without its line).
      const pqxx::result counts = tx.exec_params(
          "SELECT " + epoch_us_sql("s.window_start") +
              ", f.kind, f.name, f.module, (sum(s.count) FILTER (WHERE f.leaf))::bigint, sum(s.count)::bigint"
              " FROM samples s JOIN stacks st ON st.id = s.stack_id"
              " CROSS JOIN LATERAL ("
              "   SELECT fr.kind, fr.name, regexp_replace(regexp_replace(fr.module, ':[0-9]+$', ''), '^.*/', '') AS module,"
              "          bool_or(u.ord = cardinality(st.frame_ids)) AS leaf"
              "   FROM unnest(st.frame_ids) WITH ORDINALITY AS u(fid, ord) JOIN frames fr ON fr.id = u.fid"
              "   GROUP BY 1, 2, 3) f"
              " WHERE s.target_id IN (" + std::string(target_ids_sql) +
              ") AND s.window_start > $3::timestamptz AND s.window_start <= $4::timestamptz"
              " GROUP BY s.window_start, f.kind, f.name, f.module",
          host, target, from, to);
      for (const auto& row : counts) {
        auto w = by_start.find(row[0].as<std::int64_t>());
        if (w == by_start.end()) continue;  // samples of a window written after the query above
        Function f{static_cast<profile::FrameKind>(row[1].as<int>()), row[2].as<std::string>(), row[3].as<std::string>()};
        out[w->second].functions.push_back({functions.intern(std::move(f)),
                                            row[4].is_null() ? 0 : static_cast<std::uint64_t>(row[4].as<std::int64_t>()),
                                            static_cast<std::uint64_t>(row[5].as<std::int64_t>())});
      }
      for (CpuWindow& w : out)
        std::sort(w.functions.begin(), w.functions.end(),
                  [](const FunctionCount& a, const FunctionCount& b) { return a.function < b.function; });
      return out;
    });
  }

 private:
  pqxx::connection& conn_;
};

class PgDeploySource final : public DeploySource {
 public:
  explicit PgDeploySource(pqxx::connection& conn) : conn_(conn) {}

  Result<std::optional<Deploy>> latest(const std::string& host, const std::string& target, TimePoint from,
                                       TimePoint to) override {
    return guarded("cannot read deploy markers", [&]() -> Result<std::optional<Deploy>> {
      pqxx::read_transaction tx(conn_);
      const pqxx::result rows = tx.exec_params(
          "SELECT " + epoch_us_sql("d.at") + ", d.summary FROM deploy_markers d WHERE d.target_id IN (" +
              target_ids_sql + ") AND d.at > $3::timestamptz AND d.at <= $4::timestamptz ORDER BY d.at DESC LIMIT 1",
          host, target, to_pg_timestamp(from), to_pg_timestamp(to));
      if (rows.empty()) return std::optional<Deploy>();
      return std::optional<Deploy>(Deploy{from_epoch_us(rows[0][0].as<std::int64_t>()), rows[0][1].as<std::string>()});
    });
  }

 private:
  pqxx::connection& conn_;
};

// Application caches, page cache and LLC per window, as migration 0003 stores them.
class PgCacheSource final : public CacheSource {
 public:
  explicit PgCacheSource(pqxx::connection& conn) : conn_(conn) {}

  Result<std::vector<CacheWindow>> windows(const std::string& host, TimePoint after, TimePoint until) override {
    return guarded("cannot read cache hit rates", [&]() -> Result<std::vector<CacheWindow>> {
      pqxx::read_transaction tx(conn_);
      const pqxx::result rows = tx.exec_params(
          "SELECT t.name, c.name, " + epoch_us_sql("w.window_start") + ", " + epoch_us_sql("w.window_end") +
              ", w.hits, w.misses"
              " FROM cache_windows w JOIN caches c ON c.id = w.cache_id JOIN targets t ON t.id = c.target_id"
              " JOIN hosts h ON h.id = w.host_id"
              " WHERE h.name = $1 AND w.window_start > $2::timestamptz AND w.window_start <= $3::timestamptz"
              " ORDER BY w.window_start, t.name, c.name",
          host, to_pg_timestamp(after), to_pg_timestamp(until));
      std::vector<CacheWindow> out;
      for (const auto& row : rows)
        out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), from_epoch_us(row[2].as<std::int64_t>()),
                       from_epoch_us(row[3].as<std::int64_t>()), count_of(row[4]), count_of(row[5])});
      return out;
    });
  }

 private:
  pqxx::connection& conn_;
};

}  // namespace

std::unique_ptr<LatencySource> pg_latency_source(pqxx::connection& conn) {
  return std::make_unique<PgLatencySource>(conn);
}
std::unique_ptr<ProfileSource> pg_profile_source(pqxx::connection& conn) {
  return std::make_unique<PgProfileSource>(conn);
}
std::unique_ptr<DeploySource> pg_deploy_source(pqxx::connection& conn) { return std::make_unique<PgDeploySource>(conn); }

std::unique_ptr<CacheSource> pg_cache_source(pqxx::connection& conn) { return std::make_unique<PgCacheSource>(conn); }

}  // namespace perfwatch::alerts
