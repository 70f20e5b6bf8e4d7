#include "alerts/alert_store.h"

#include <nlohmann/json.hpp>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "alerts/formats.h"
#include "storage/pg_codec.h"
#include "storage/store.h"

namespace perfwatch::alerts {
namespace {

using nlohmann::json;
using storage::epoch_us_sql;
using storage::guarded;
using storage::from_epoch_us;
using storage::to_pg_timestamp;

std::int64_t to_us(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

json optional_us(const std::optional<TimePoint>& t) { return t ? json(to_us(*t)) : json(nullptr); }
std::optional<TimePoint> optional_time(const json& j) {
  if (j.is_null()) return std::nullopt;
  return from_epoch_us(j.get<std::int64_t>());
}

json progress_json(const Progress& p) {
  return {{"state", to_string(p.state)},
          {"active_since_us", to_us(p.active_since)},
          {"fired_at_us", to_us(p.fired_at)},
          {"clear_since_us", optional_us(p.clear_since)},
          {"last_end_us", optional_us(p.last_end)}};
}

Progress progress_from(const json& j) {
  Progress p;
  p.state = parse_state(j.at("state").get<std::string>()).value_or(State::inactive);
  p.active_since = from_epoch_us(j.at("active_since_us").get<std::int64_t>());
  p.fired_at = from_epoch_us(j.at("fired_at_us").get<std::int64_t>());
  p.clear_since = optional_time(j.at("clear_since_us"));
  p.last_end = optional_time(j.at("last_end_us"));
  return p;
}

std::string time_or_empty(const std::optional<TimePoint>& t) { return t ? to_pg_timestamp(*t) : std::string(); }

}  // namespace

int AlertStore::host_id(pqxx::transaction_base& tx) {
  if (host_id_ < 0) host_id_ = storage::ensure_host(tx, host_);
  return host_id_;
}

Result<std::vector<AlertRecord>> AlertStore::load_active() {
  return guarded("cannot load alerts", [&]() -> Result<std::vector<AlertRecord>> {
    pqxx::read_transaction tx(conn_);
    const pqxx::result rows = tx.exec_params(
        "SELECT a.fingerprint, a.rule, a.labels::text, a.annotations::text, a.value, a.progress::text, " +
            epoch_us_sql("a.ends_at") +
            ", (SELECT json_object_agg(n.receiver, " + epoch_us_sql("n.notified_at") +
            ")::text FROM alert_notifications n WHERE n.fingerprint = a.fingerprint)"
            " FROM alerts a JOIN hosts h ON h.id = a.host_id WHERE h.name = $1 AND a.state <> 'inactive'",
        host_);
    std::vector<AlertRecord> out;
    for (const auto& row : rows) {
      AlertRecord r;
      r.fingerprint = row[0].as<std::string>();
      r.rule = row[1].as<std::string>();
      r.labels = json::parse(row[2].as<std::string>()).get<Labels>();
      r.annotations = json::parse(row[3].as<std::string>()).get<Annotations>();
      r.value = row[4].as<double>();
      r.progress = progress_from(json::parse(row[5].as<std::string>()));
      if (!row[6].is_null()) r.resolved_at = from_epoch_us(row[6].as<std::int64_t>());
      if (!row[7].is_null()) {
        const json notified = json::parse(row[7].as<std::string>());
        for (const auto& [receiver, us] : notified.items()) r.notified[receiver] = from_epoch_us(us.get<std::int64_t>());
      }
      out.push_back(std::move(r));
    }
    return out;
  });
}

Result<std::map<std::string, TimePoint>> AlertStore::load_cursors() {
  return guarded("cannot load alert cursors", [&]() -> Result<std::map<std::string, TimePoint>> {
    pqxx::read_transaction tx(conn_);
    const pqxx::result rows = tx.exec_params(
        "SELECT c.rule, " + epoch_us_sql("c.position") +
            " FROM alert_cursors c JOIN hosts h ON h.id = c.host_id WHERE h.name = $1",
        host_);
    std::map<std::string, TimePoint> out;
    for (const auto& row : rows) out[row[0].as<std::string>()] = from_epoch_us(row[1].as<std::int64_t>());
    return out;
  });
}

Result<void> AlertStore::commit(const Batch& batch) {
  if (batch.empty()) return {};
  return guarded("cannot store alerts", [&]() -> Result<void> {
    pqxx::work tx(conn_, "alerts");
    const int hid = host_id(tx);
    for (const auto& [fp, r] : batch.alerts) {
      const bool firing = r.progress.state == State::firing;
      tx.exec_params0(
          "INSERT INTO alerts (fingerprint, host_id, rule, labels, annotations, value, state, starts_at, ends_at,"
          "                    updated_at, progress)"
          " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, NULLIF($8, '')::timestamptz,"
          "         NULLIF($9, '')::timestamptz, now(), $10::jsonb)"
          " ON CONFLICT (fingerprint) DO UPDATE SET rule = EXCLUDED.rule, labels = EXCLUDED.labels,"
          "   annotations = EXCLUDED.annotations, value = EXCLUDED.value, state = EXCLUDED.state,"
          "   starts_at = COALESCE(EXCLUDED.starts_at, alerts.starts_at),"
          "   ends_at = COALESCE(EXCLUDED.ends_at, alerts.ends_at), updated_at = now(), progress = EXCLUDED.progress",
          fp, hid, r.rule, json(r.labels).dump(-1, ' ', false, json::error_handler_t::replace), json(r.annotations).dump(-1, ' ', false, json::error_handler_t::replace), r.value,
          std::string(to_string(r.progress.state)), firing ? to_pg_timestamp(r.progress.fired_at) : std::string(),
          time_or_empty(r.resolved_at), progress_json(r.progress).dump(-1, ' ', false, json::error_handler_t::replace));
      tx.exec_params0("DELETE FROM alert_notifications WHERE fingerprint = $1", fp);
      for (const auto& [receiver, at] : r.notified)
        tx.exec_params0(
            "INSERT INTO alert_notifications (fingerprint, receiver, notified_at) VALUES ($1, $2, $3::timestamptz)", fp,
            receiver, to_pg_timestamp(at));
    }
    for (const Event& e : batch.events)
      tx.exec_params0(
          "INSERT INTO alert_events (fingerprint, at, state, value, summary) VALUES ($1, $2::timestamptz, $3, $4, $5)",
          e.fingerprint, to_pg_timestamp(e.at), std::string(to_string(e.kind)), e.value, e.summary);
    for (const Notification& n : batch.notifications)
      tx.exec_params0(
          "INSERT INTO alert_outbox (host_id, receiver, fingerprint, status, notice) VALUES ($1, $2, $3, $4, $5::jsonb)"
          " ON CONFLICT (host_id, receiver, fingerprint) WHERE state = 'pending' DO UPDATE SET"
          "   status = EXCLUDED.status, notice = EXCLUDED.notice, revision = alert_outbox.revision + 1",
          hid, n.receiver, n.notice.fingerprint, std::string(n.notice.firing ? "firing" : "resolved"),
          to_json(n.notice).dump(-1, ' ', false, json::error_handler_t::replace));
    for (const auto& [rule, position] : batch.cursors)
      tx.exec_params0(
          "INSERT INTO alert_cursors (host_id, rule, position) VALUES ($1, $2, $3::timestamptz)"
          " ON CONFLICT (host_id, rule) DO UPDATE SET position = EXCLUDED.position",
          hid, rule, to_pg_timestamp(position));
    tx.commit();
    return {};
  });
}

Result<std::int64_t> AlertStore::apply_retention(TimePoint cutoff) {
  return guarded("cannot apply alert retention", [&]() -> Result<std::int64_t> {
    pqxx::work tx(conn_, "alert_retention");
    const int hid = host_id(tx);
    const std::string at = to_pg_timestamp(cutoff);
    std::int64_t deleted = 0;
    deleted += tx.exec_params(
                     "DELETE FROM alert_events e USING alerts a"
                     " WHERE a.fingerprint = e.fingerprint AND a.host_id = $1 AND e.at < $2::timestamptz",
                     hid, at)
                   .affected_rows();
    deleted += tx.exec_params("DELETE FROM alert_outbox WHERE host_id = $1 AND state <> 'pending'"
                              " AND done_at < $2::timestamptz",
                              hid, at)
                   .affected_rows();
    deleted += tx.exec_params("DELETE FROM alerts WHERE host_id = $1 AND state = 'inactive'"
                              " AND updated_at < $2::timestamptz",
                              hid, at)
                   .affected_rows();
    tx.commit();
    return deleted;
  });
}

}  // namespace perfwatch::alerts
