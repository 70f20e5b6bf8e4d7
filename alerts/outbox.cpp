#include "alerts/outbox.h"

#include <nlohmann/json.hpp>
#include <pqxx/result>
#include <pqxx/transaction>

#include "alerts/formats.h"
#include "common/log.h"
#include "storage/pg_codec.h"

namespace perfwatch::alerts {
namespace {

using storage::guarded;

std::vector<std::int64_t> ids_of(std::span<const OutboxRow> rows) {
  std::vector<std::int64_t> ids;
  for (const OutboxRow& r : rows) ids.push_back(r.id);
  return ids;
}

std::string text_array_literal(std::span<const std::string> values) {
  std::string out = "{";
  for (const std::string& v : values) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    for (char c : v) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out + "}";
}

}  // namespace

Result<std::vector<OutboxRow>> Outbox::due(std::span<const std::string> receivers, std::size_t limit) {
  return guarded("cannot read the outbox", [&]() -> Result<std::vector<OutboxRow>> {
    pqxx::work tx(conn_, "outbox_due");
    const pqxx::result rows = tx.exec_params(
        "SELECT o.id, o.receiver, o.revision, o.attempts, o.notice::text FROM alert_outbox o"
        " JOIN hosts h ON h.id = o.host_id"
        " WHERE h.name = $1 AND o.state = 'pending' AND o.next_attempt_at <= now() AND o.receiver = ANY($2::text[])"
        " ORDER BY o.id LIMIT $3",
        host_, text_array_literal(receivers), static_cast<std::int64_t>(limit));
    std::vector<OutboxRow> out;
    for (const auto& row : rows) {
      OutboxRow r{row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::int32_t>(),
                  row[3].as<std::int32_t>(), {}};
      Result<Notice> notice = notice_from_json(nlohmann::json::parse(row[4].as<std::string>(), nullptr, false));
      if (!notice) {
        ++malformed_;
        log::error("unreadable notification in the outbox; marked failed", {{"id", r.id}, {"error", notice.error().message}});
        tx.exec_params0("UPDATE alert_outbox SET state = 'failed', done_at = now(), last_error = $2 WHERE id = $1", r.id,
                        notice.error().message);
        continue;
      }
      r.notice = std::move(*notice);
      out.push_back(std::move(r));
    }
    tx.commit();
    return out;
  });
}

Result<OutboxBacklog> Outbox::backlog() {
  return guarded("cannot read the outbox", [&]() -> Result<OutboxBacklog> {
    pqxx::read_transaction tx(conn_);
    const pqxx::row row = tx.exec_params1(
        "SELECT count(*), " + storage::epoch_us_sql("min(o.created_at)") + " FROM alert_outbox o"
        " JOIN hosts h ON h.id = o.host_id WHERE h.name = $1 AND o.state = 'pending'",
        host_);
    OutboxBacklog b{static_cast<std::uint64_t>(row[0].as<std::int64_t>()), std::nullopt};
    if (!row[1].is_null()) b.oldest = storage::from_epoch_us(row[1].as<std::int64_t>());
    return b;
  });
}

Result<void> Outbox::delivered(std::span<const OutboxRow> rows) {
  return guarded("cannot mark notifications delivered", [&]() -> Result<void> {
    pqxx::work tx(conn_, "outbox_delivered");
    for (const OutboxRow& r : rows)
      tx.exec_params0(
          "UPDATE alert_outbox SET state = 'delivered', done_at = now(), attempts = attempts + 1, last_error = NULL"
          " WHERE id = $1 AND revision = $2",
          r.id, r.revision);
    tx.commit();
    return {};
  });
}

Result<void> Outbox::failed(std::span<const OutboxRow> rows, const std::string& error) {
  return guarded("cannot mark notifications failed", [&]() -> Result<void> {
    pqxx::work tx(conn_, "outbox_failed");
    for (const OutboxRow& r : rows)
      tx.exec_params0(
          "UPDATE alert_outbox SET state = 'failed', done_at = now(), attempts = attempts + 1, last_error = $3"
          " WHERE id = $1 AND revision = $2",
          r.id, r.revision, error);
    tx.commit();
    return {};
  });
}

Result<void> Outbox::retry(std::span<const OutboxRow> rows, TimePoint next_attempt, const std::string& error) {
  return guarded("cannot schedule a retry", [&]() -> Result<void> {
    pqxx::work tx(conn_, "outbox_retry");
    tx.exec_params0(
        "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $2::timestamptz, last_error = $3"
        " WHERE id = ANY($1::bigint[])",
        storage::int_array_literal(ids_of(rows)), storage::to_pg_timestamp(next_attempt), error);
    tx.commit();
    return {};
  });
}

}  // namespace perfwatch::alerts
