#pragma once
// The delivery side of the outbox (migration 0004): the notifications due for this host's receivers,
// and what became of each send. Rows are marked delivered or failed only at the revision that was
// sent, so a newer state queued meanwhile is still delivered. A retry is scheduled whatever the
// revision: its delay spares the receiver, and the row, still pending, sends its newest state.
#include <cstdint>
#include <optional>
#include <pqxx/connection>
#include <span>
#include <string>
#include <vector>

#include "alerts/model.h"
#include "common/result.h"

namespace perfwatch::alerts {

struct OutboxRow {
  std::int64_t id = 0;
  std::string receiver;
  std::int32_t revision = 0;
  std::int32_t attempts = 0;  // sends tried so far
  Notice notice;
};

// Notifications of the host not yet delivered (pending, due or waiting for a retry).
struct OutboxBacklog {
  std::uint64_t pending = 0;
  std::optional<TimePoint> oldest;  // when the oldest of them was queued
};

class Outbox {
 public:
  Outbox(pqxx::connection& conn, std::string host) : conn_(conn), host_(std::move(host)) {}

  // Pending rows of these receivers whose next attempt is due, oldest first. Rows whose notice cannot
  // be read are marked failed (and counted in `malformed`).
  Result<std::vector<OutboxRow>> due(std::span<const std::string> receivers, std::size_t limit);
  Result<void> delivered(std::span<const OutboxRow> rows);
  // Not retried (4xx): kept, marked failed, with the reason.
  Result<void> failed(std::span<const OutboxRow> rows, const std::string& error);
  // Tried again at next_attempt.
  Result<void> retry(std::span<const OutboxRow> rows, TimePoint next_attempt, const std::string& error);

  Result<OutboxBacklog> backlog();

  std::uint64_t malformed() const { return malformed_; }

 private:
  pqxx::connection& conn_;
  std::string host_;
  std::uint64_t malformed_ = 0;
};

}  // namespace perfwatch::alerts
