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

}  // namespace

std::unique_ptr<ProfileSource> pg_profile_source(pqxx::connection& conn) {
  return std::make_unique<PgProfileSource>(conn);
}
std::unique_ptr<DeploySource> pg_deploy_source(pqxx::connection& conn) { return std::make_unique<PgDeploySource>(conn); }

}  // namespace perfwatch::alerts
