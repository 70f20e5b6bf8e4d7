#include "storage/store.h"

#include <nlohmann/json.hpp>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/stream_to>
#include <pqxx/transaction>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "storage/conninfo.h"
#include "storage/ids.h"
#include "storage/migrations.h"
#include "storage/pg_codec.h"

namespace perfwatch::storage {
namespace {

using profile::WindowProfile;

// Serializes partition DDL (creation by any host, retention) across every host sharing the database.
constexpr std::int64_t partition_lock_key = 0x7077706172746974;  // "pwpartit"
constexpr std::int64_t seconds_per_day = 86400;
constexpr const char* partitioned_tables[] = {"samples", "windows", "latency", "latency_health", "cache_windows",
                                              "cache_health", "host_windows"};

std::int64_t day_of(profile::TimePoint t) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  return s >= 0 ? s / seconds_per_day : (s - seconds_per_day + 1) / seconds_per_day;
}

profile::TimePoint day_start(std::int64_t day) { return profile::TimePoint(std::chrono::seconds(day * seconds_per_day)); }

// Partition names derive from the date only ("samples_p20261124"), never from user input.
std::string partition_name(const char* table, std::int64_t day) {
  std::time_t t = day * seconds_per_day;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_p%04d%02d%02d", table, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

// The day a partition of `table` covers, from its name; nullopt for anything not named by partition_name.
std::optional<std::int64_t> partition_day(const char* table, const std::string& name) {
  const std::string prefix = std::string(table) + "_p";
  if (name.size() != prefix.size() + 8 || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::tm tm{};
  if (std::sscanf(name.c_str() + prefix.size(), "%4d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::int64_t day = static_cast<std::int64_t>(timegm(&tm)) / seconds_per_day;
  if (partition_name(table, day) != name) return std::nullopt;
  return day;
}

// Why a write failed, by what was thrown. SQL errors by class: the window's data (22), a constraint it
// breaks (23) or a limit it exceeds (54) will fail again however often it is sent; every other class
// (connection, rollbacks, resources, rights, missing relations, timeouts, shutdowns) is the database's
// state, which changes. libpqxx's logic errors come from converting the window's values.
WriteFailure classify(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string_view state = sql->sqlstate();
    const std::string_view sql_class = state.substr(0, std::min<std::size_t>(2, state.size()));
    return sql_class == "22" || sql_class == "23" || sql_class == "54" ? WriteFailure::unwritable
                                                                       : WriteFailure::transient;
  }
  if (dynamic_cast<const std::logic_error*>(&e)) return WriteFailure::unwritable;
  return WriteFailure::transient;
}

// Thrown inside the write transaction (which then rolls back) for a window far ahead of the database.
struct ImplausibleTime : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The database server's clock, which every host shares, unlike their own.
profile::TimePoint database_now(pqxx::transaction_base& tx) {
  return from_epoch_us(tx.exec1("SELECT " + epoch_us_sql("now()"))[0].as<std::int64_t>());
}

// A set of ids that forgets everything when full: bounded memory, and forgetting only costs
// re-sending ids the database will ignore.
class KnownIds {
 public:
  explicit KnownIds(std::size_t capacity) : capacity_(capacity) {}
  bool contains(std::int64_t id) const { return ids_.count(id) != 0; }
  template <typename Range>
  void add(const Range& ids) {
    if (ids_.size() + ids.size() > capacity_) ids_.clear();
    if (ids.size() <= capacity_) ids_.insert(ids.begin(), ids.end());
  }
  void clear() { ids_.clear(); }

 private:
  std::size_t capacity_;
  std::unordered_set<std::int64_t> ids_;
};

struct SampleRow {
  std::size_t target_index;
  std::int64_t stack_id;
  bool operator==(const SampleRow&) const = default;
};
struct SampleRowHash {
  std::size_t operator()(const SampleRow& r) const { return std::hash<std::int64_t>()(r.stack_id) ^ r.target_index; }
};

// What one window sends, computed before the transaction starts.
struct Batch {
  std::unordered_map<std::int64_t, profile::Frame> new_frames;
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> new_stacks;
  std::unordered_map<SampleRow, std::uint64_t, SampleRowHash> counts;  // identical stacks merged
};

}  // namespace

struct PgStore::Impl {
  explicit Impl(std::unique_ptr<pqxx::connection> c, std::size_t capacity)
      : conn(std::move(c)), known_frames(capacity), known_stacks(capacity) {}

  std::unique_ptr<pqxx::connection> conn;
  KnownIds known_frames;
  KnownIds known_stacks;
  std::set<std::int64_t> known_days;  // partitions known to exist
  std::map<std::string, int> host_ids;
  std::map<std::pair<int, std::string>, int> target_ids;
  std::map<std::tuple<int, std::string, std::string, std::string>, int> operation_ids;  // (target, name, source, spec)
  std::map<std::tuple<int, std::string, std::string, std::string>, int> cache_ids;  // (target, name, kind, spec)

  void forget_cached_state() {
    operation_ids.clear();
    cache_ids.clear();
    known_frames.clear();
    known_stacks.clear();
    known_days.clear();
    host_ids.clear();
    target_ids.clear();
  }

  Batch prepare(const WindowProfile& w) const {
    Batch batch;
    std::vector<std::int64_t> frame_ids(w.profile.frames.size());
    for (std::size_t i = 0; i < frame_ids.size(); ++i) {
      const profile::Frame& f = w.profile.frames[i];
      profile::Frame clean{f.kind, sanitize_utf8(f.name), sanitize_utf8(f.module)};
      frame_ids[i] = frame_id(clean);
      if (!known_frames.contains(frame_ids[i])) batch.new_frames.emplace(frame_ids[i], std::move(clean));
    }
    std::size_t skipped = 0;
    for (const profile::Stack& s : w.profile.stacks) {
      std::vector<std::int64_t> ids;
      ids.reserve(s.frame_ids.size());
      for (std::uint32_t f : s.frame_ids)
        if (f < frame_ids.size()) ids.push_back(frame_ids[f]);
      if (s.target_index >= w.targets.size() || ids.size() != s.frame_ids.size()) {
        ++skipped;
        continue;
      }
      const std::int64_t sid = stack_id(ids);
      batch.counts[{s.target_index, sid}] += s.count;
      if (!known_stacks.contains(sid)) batch.new_stacks.emplace(sid, std::move(ids));
    }
    // Frames only referenced by stacks already stored are stored too; drop the rest of the unknown.
    if (skipped) log::warn("skipped malformed stacks", {{"host", w.host}, {"stacks", skipped}});
    return batch;
  }

  int host_id(pqxx::work& tx, const std::string& name) {
    if (auto it = host_ids.find(name); it != host_ids.end()) return it->second;
    return host_ids[name] = ensure_host(tx, name);
  }

  int target_id(pqxx::work& tx, int host, const std::string& name) {
    auto key = std::make_pair(host, name);
    if (auto it = target_ids.find(key); it != target_ids.end()) return it->second;
    tx.exec_params0("INSERT INTO targets (host_id, name) VALUES ($1, $2) ON CONFLICT (host_id, name) DO NOTHING",
                    host, name);
    int id = tx.exec_params1("SELECT id FROM targets WHERE host_id = $1 AND name = $2", host, name)[0].as<int>();
    return target_ids[key] = id;
  }

  // An operation keeps its id across config changes; its source and spec are the newest configured.
  int operation_id(pqxx::work& tx, int target, const profile::OperationWindow& op) {
    auto key = std::make_tuple(target, sanitize_utf8(op.name), std::string(profile::to_string(op.source)),
                               sanitize_utf8(op.spec));
    if (auto it = operation_ids.find(key); it != operation_ids.end()) return it->second;
    const auto& [t, name, source, spec] = key;
    tx.exec_params0(
        "INSERT INTO operations (target_id, name, source, spec) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (target_id, name) DO UPDATE SET source = EXCLUDED.source, spec = EXCLUDED.spec"
        " WHERE (operations.source, operations.spec) IS DISTINCT FROM (EXCLUDED.source, EXCLUDED.spec)",
        t, name, source, spec);
    int id = tx.exec_params1("SELECT id FROM operations WHERE target_id = $1 AND name = $2", t, name)[0].as<int>();
    return operation_ids[key] = id;
  }

  void write_latency(pqxx::work& tx, const WindowProfile& w, int hid, const std::vector<int>& tids,
                     const std::string& start, const std::string& end) {
    const std::string tid_array = int_array_literal(tids);
    tx.exec_params0("DELETE FROM latency WHERE target_id = ANY($1::integer[]) AND window_start = $2::timestamptz",
                    tid_array, start);
    tx.exec_params0("DELETE FROM latency_health WHERE host_id = $1 AND window_start = $2::timestamptz", hid, start);
    for (const profile::OperationWindow& op : w.operations) {
      const profile::LatencyHistogram& h = op.histogram;
      if (op.target_index >= tids.size() || h.count == 0) continue;
      const auto [index, counts] = bucket_array_literals(h);
      auto i64 = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
      tx.exec_params0(
          "INSERT INTO latency (host_id, target_id, operation_id, window_start, window_end, tier, threshold_ns, calls,"
          " sum_ns, max_ns, slow, slow_fraction, p50_ns, p95_ns, p99_ns, scheme, bucket_index, bucket_count)"
          " VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
          " $17::smallint[], $18::bigint[])",
          hid, tids[op.target_index], operation_id(tx, tids[op.target_index], op), start, end,
          static_cast<int>(op.tier), i64(op.threshold_ns), i64(h.count), i64(h.sum_ns), i64(h.max_ns), i64(h.slow),
          static_cast<double>(h.slow) / static_cast<double>(h.count), i64(profile::percentile(h, 0.50)),
          i64(profile::percentile(h, 0.95)), i64(profile::percentile(h, 0.99)), profile::latency_scheme_version,
          index, counts);
    }
    const profile::LatencyStats& l = w.latency;
    tx.exec_params0(
        "INSERT INTO latency_health (host_id, window_start, window_end, probe_calls, lost_no_entry, lost_unwound,"
        " lost_map_full, statsd_packets, statsd_timings, statsd_unknown, statsd_ignored, statsd_malformed,"
        " statsd_oversized) VALUES ($1, $2::timestamptz, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        hid, start, end, static_cast<std::int64_t>(l.probe_calls), static_cast<std::int64_t>(l.lost_no_entry),
        static_cast<std::int64_t>(l.lost_unwound), static_cast<std::int64_t>(l.lost_map_full),
        static_cast<std::int64_t>(l.statsd_packets), static_cast<std::int64_t>(l.statsd_timings),
        static_cast<std::int64_t>(l.statsd_unknown), static_cast<std::int64_t>(l.statsd_ignored),
        static_cast<std::int64_t>(l.statsd_malformed), static_cast<std::int64_t>(l.statsd_oversized));
  }

  // A cache keeps its id across config changes; its kind and spec are the newest configured.
  int cache_id(pqxx::work& tx, int target, const profile::CacheWindow& cache) {
    auto key = std::make_tuple(target, sanitize_utf8(cache.name), std::string(profile::to_string(cache.kind)),
                               sanitize_utf8(cache.spec));
    if (auto it = cache_ids.find(key); it != cache_ids.end()) return it->second;
    const auto& [t, name, kind, spec] = key;
    tx.exec_params0(
        "INSERT INTO caches (target_id, name, kind, spec) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (target_id, name) DO UPDATE SET kind = EXCLUDED.kind, spec = EXCLUDED.spec"
        " WHERE (caches.kind, caches.spec) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.spec)",
        t, name, kind, spec);
    int id = tx.exec_params1("SELECT id FROM caches WHERE target_id = $1 AND name = $2", t, name)[0].as<int>();
    return cache_ids[key] = id;
  }

  void write_caches(pqxx::work& tx, const WindowProfile& w, int hid, const std::vector<int>& tids,
                    const std::string& start, const std::string& end) {
    auto i64 = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
    tx.exec_params0("DELETE FROM cache_windows WHERE target_id = ANY($1::integer[]) AND window_start = $2::timestamptz",
                    int_array_literal(tids), start);
    tx.exec_params0("DELETE FROM cache_health WHERE host_id = $1 AND window_start = $2::timestamptz", hid, start);
    for (const profile::CacheWindow& c : w.caches) {
      if (c.target_index >= tids.size() || c.lookups + c.misses == 0) continue;
      const std::optional<double> ratio =
          c.lookups ? std::optional<double>(static_cast<double>(c.hits()) / static_cast<double>(c.lookups)) : std::nullopt;
      tx.exec_params0(
          "INSERT INTO cache_windows (host_id, target_id, cache_id, window_start, window_end, lookups, hits, misses,"
          " hit_ratio) VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9)",
          hid, tids[c.target_index], cache_id(tx, tids[c.target_index], c), start, end, i64(c.lookups), i64(c.hits()),
          i64(c.misses), ratio);
    }
    const profile::CacheStats& st = w.cache;
    tx.exec_params0(
        "INSERT INTO cache_health (host_id, window_start, window_end, page_cache_state, page_cache_measured, llc_state,"
        " llc_measured, page_lookups, page_added, page_write_adds, llc_references, llc_misses, statsd_counts)"
        " VALUES ($1, $2::timestamptz, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        hid, start, end, sanitize_utf8(st.page_cache.text), st.page_cache.measured, sanitize_utf8(st.llc.text),
        st.llc.measured, i64(st.host.page_lookups), i64(st.host.page_added), i64(st.host.page_write_adds),
        i64(st.host.llc_references), i64(st.host.llc_misses), i64(st.statsd_counts));
  }

  void write_host_window(pqxx::work& tx, const WindowProfile& w, int hid, const std::string& start,
                         const std::string& end) {
    nlohmann::json probes = nlohmann::json::object();
    for (const profile::ProbeState& p : w.probes)
      probes[std::string(profile::to_string(p.family))] = {{"status", profile::to_string(p.status)},
                                                           {"detail", sanitize_utf8(p.detail)}};
    tx.exec_params0(
        "INSERT INTO host_windows (host_id, window_start, window_end, probes) VALUES ($1, $2::timestamptz,"
        " $3::timestamptz, $4::jsonb) ON CONFLICT (host_id, window_start) DO UPDATE SET window_end = EXCLUDED.window_end,"
        " probes = EXCLUDED.probes",
        hid, start, end, probes.dump());
  }

  void ensure_partitions(pqxx::work& tx, std::int64_t day) {
    if (known_days.count(day)) return;
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", partition_lock_key);
    for (const char* table : partitioned_tables)
      tx.exec0("CREATE TABLE IF NOT EXISTS " + partition_name(table, day) + " PARTITION OF " + table +
               " FOR VALUES FROM ('" + to_pg_timestamp(day_start(day)) + "') TO ('" +
               to_pg_timestamp(day_start(day + 1)) + "')");
  }

  // Frames and stacks go through COPY into temporary tables, then into the real ones with
  // ON CONFLICT DO NOTHING: batched, and safe when another host inserts the same ids meanwhile.
  void insert_frames_and_stacks(pqxx::work& tx, const Batch& batch) {
    if (!batch.new_frames.empty()) {
      pqxx::stream_to copy(tx, "pw_new_frames", std::vector<std::string>{"id", "kind", "name", "module"});
      for (const auto& [id, f] : batch.new_frames)
        copy << std::make_tuple(id, static_cast<int>(f.kind), f.name, f.module);
      copy.complete();
      tx.exec0("INSERT INTO frames SELECT * FROM pw_new_frames ON CONFLICT DO NOTHING");
    }
    if (!batch.new_stacks.empty()) {
      pqxx::stream_to copy(tx, "pw_new_stacks", std::vector<std::string>{"id", "frame_ids"});
      for (const auto& [id, frames] : batch.new_stacks) copy << std::make_tuple(id, int_array_literal(frames));
      copy.complete();
      tx.exec0("INSERT INTO stacks SELECT * FROM pw_new_stacks ON CONFLICT DO NOTHING");
    }
  }

  void write(const WindowProfile& w) {
    const Batch batch = prepare(w);
    const std::string start = to_pg_timestamp(w.start);
    const std::int64_t day = day_of(w.start);

    pqxx::work tx(*conn, "write_window");
    // Checked first, before anything (partitions above all) is made for the window.
    const profile::TimePoint db_now = database_now(tx);
    if (w.start > db_now + max_ahead_of_database)
      throw ImplausibleTime("window starts at " + to_pg_timestamp(w.start) + ", " +
                            std::to_string(std::chrono::duration_cast<std::chrono::hours>(w.start - db_now).count()) +
                            " h ahead of the database's clock (" + to_pg_timestamp(db_now) + ")");
    const std::string host = sanitize_utf8(w.host);
    const int hid = host_id(tx, host);
    std::vector<int> tids;
    for (const profile::TargetWindow& t : w.targets) tids.push_back(target_id(tx, hid, sanitize_utf8(t.name)));
    ensure_partitions(tx, day);
    insert_frames_and_stacks(tx, batch);

    // Replace, not add: a window replayed after a crash must not count twice.
    const std::string tid_array = int_array_literal(tids);
    tx.exec_params0("DELETE FROM samples WHERE target_id = ANY($1::integer[]) AND window_start = $2::timestamptz",
                    tid_array, start);
    tx.exec_params0("DELETE FROM windows WHERE target_id = ANY($1::integer[]) AND window_start = $2::timestamptz",
                    tid_array, start);
    // One row per target: few enough that COPY would not pay off.
    const profile::SamplerStats& st = w.stats;
    for (std::size_t i = 0; i < w.targets.size(); ++i) {
      const profile::TargetWindow& t = w.targets[i];
      tx.exec_params0(
          "INSERT INTO windows (host_id, target_id, window_start, window_end, samples, pids, sampler_samples,"
          " lost_stack_collision, lost_stack_error, lost_map_full, lost_unresolved)"
          " VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5, $6::integer[], $7, $8, $9, $10, $11)",
          hid, tids[i], start, to_pg_timestamp(w.end), static_cast<std::int64_t>(t.samples), int_array_literal(t.pids),
          static_cast<std::int64_t>(st.samples), static_cast<std::int64_t>(st.lost_stack_collision),
          static_cast<std::int64_t>(st.lost_stack_error), static_cast<std::int64_t>(st.lost_map_full),
          static_cast<std::int64_t>(st.lost_unresolved));
    }
    // Replayed windows write their markers again: one per target and time.
    for (const profile::DeployMarker& d : w.deploys) {
      if (d.target_index >= tids.size()) continue;
      nlohmann::json changes = nlohmann::json::array();
      for (const profile::DeployChange& c : d.changes)
        changes.push_back({{"kind", c.kind}, {"path", sanitize_utf8(c.path)}, {"before", c.before}, {"after", c.after}});
      tx.exec_params0(
          "INSERT INTO deploy_markers (host_id, target_id, at, summary, changes)"
          " VALUES ($1, $2, $3::timestamptz, $4, $5::jsonb) ON CONFLICT (target_id, at) DO NOTHING",
          hid, tids[d.target_index], to_pg_timestamp(d.at), sanitize_utf8(d.summary), changes.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (!batch.counts.empty()) {
      pqxx::stream_to copy(tx, "samples",
                           std::vector<std::string>{"host_id", "target_id", "window_start", "stack_id", "count"});
      for (const auto& [row, count] : batch.counts)
        copy << std::make_tuple(hid, tids[row.target_index], start, row.stack_id, static_cast<std::int64_t>(count));
      copy.complete();
    }
    write_latency(tx, w, hid, tids, start, to_pg_timestamp(w.end));
    write_caches(tx, w, hid, tids, start, to_pg_timestamp(w.end));
    write_host_window(tx, w, hid, start, to_pg_timestamp(w.end));
    tx.commit();

    known_days.insert(day);
    std::vector<std::int64_t> ids;
    for (const auto& [id, f] : batch.new_frames) ids.push_back(id);
    known_frames.add(ids);
    ids.clear();
    for (const auto& [id, s] : batch.new_stacks) ids.push_back(id);
    known_stacks.add(ids);
  }

  int apply_retention(Duration retention, profile::TimePoint now) {
    pqxx::work tx(*conn, "retention");
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", partition_lock_key);
    const profile::TimePoint cutoff =
        std::min(now, database_now(tx)) - std::chrono::duration_cast<profile::Clock::duration>(retention);
    int dropped = 0;
    for (const char* table : partitioned_tables) {
      auto rows = tx.exec_params(
          "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
          " WHERE i.inhparent = $1::regclass",
          std::string(table));
      for (const auto& row : rows) {
        auto day = partition_day(table, row[0].as<std::string>());
        if (!day || day_start(*day + 1) > cutoff) continue;
        tx.exec0("DROP TABLE " + partition_name(table, *day));
        known_days.erase(*day);
        ++dropped;
      }
    }
    tx.commit();
    return dropped;
  }
};

int ensure_host(pqxx::transaction_base& tx, const std::string& name) {
  // Two statements, not one: under READ COMMITTED the SELECT needs its own snapshot to see a
  // row another host inserted concurrently.
  tx.exec_params0("INSERT INTO hosts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name);
  return tx.exec_params1("SELECT id FROM hosts WHERE name = $1", name)[0].as<int>();
}

Result<std::unique_ptr<pqxx::connection>> connect_database(const ConnectOptions& options, bool migrate) {
  auto conninfo = resolve_conninfo(options.uri, options.password_file);
  if (!conninfo) return conninfo.error();
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(*conninfo);
    // Kept by libpqxx and set again should it reconnect.
    if (options.statement_timeout.count() > 0)
      conn->set_variable("statement_timeout", std::to_string(options.statement_timeout.count()));
  } catch (const std::exception& e) {
    return make_error(std::string("cannot connect to PostgreSQL: ") + e.what());
  }
  if (migrate)
    if (auto migrated = storage::migrate(*conn); !migrated) return migrated.error();
  return conn;
}

PgStore::PgStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::connect(const ConnectOptions& options, std::size_t known_ids_capacity) {
  auto conn = connect_database(options);
  if (!conn) return conn.error();
  try {
    pqxx::nontransaction tx(**conn);
    // Staging tables for the ON CONFLICT inserts; private to the session, emptied at each commit.
    tx.exec0("CREATE TEMP TABLE pw_new_frames (LIKE frames) ON COMMIT DELETE ROWS");
    tx.exec0("CREATE TEMP TABLE pw_new_stacks (LIKE stacks) ON COMMIT DELETE ROWS");
    tx.exec0("SET statement_timeout = " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(statement_timeout).count()));
  } catch (const std::exception& e) {
    return make_error(std::string("cannot prepare the PostgreSQL session: ") + e.what());
  }
  return std::unique_ptr<PgStore>(new PgStore(std::make_unique<Impl>(std::move(*conn), known_ids_capacity)));
}

WriteResult PgStore::write_window(const WindowProfile& window) {
  try {
    impl_->write(window);
    return {};
  } catch (const ImplausibleTime& e) {
    return WriteError{WriteFailure::implausible_time, std::string("cannot write window: ") + e.what()};
  } catch (const std::exception& e) {
    // The transaction rolled back: what it inserted may not be in the database after all.
    impl_->forget_cached_state();
    return WriteError{classify(e), std::string("cannot write window: ") + e.what()};
  }
}

Result<int> PgStore::apply_retention(Duration retention, profile::TimePoint now) {
  try {
    return impl_->apply_retention(retention, now);
  } catch (const std::exception& e) {
    return make_error(std::string("cannot apply retention: ") + e.what());
  }
}

StoreFactory PgStore::factory(ConnectOptions options) {
  return [options = std::move(options)]() -> Result<std::unique_ptr<Store>> {
    auto store = PgStore::connect(options);
    if (!store) return store.error();
    return std::unique_ptr<Store>(std::move(*store));
  };
}

}  // namespace perfwatch::storage
