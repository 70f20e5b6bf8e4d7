#pragma once
// The evaluator's state in PostgreSQL (migration 0004): alerts, their history, the rules' cursors,
// and the outbox, all written by commit() in one transaction, so an alert never changes state without
// its notifications being queued, nor is notified twice for one change.
#include <map>
#include <memory>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "alerts/evaluator.h"
#include "common/duration.h"
#include "common/result.h"

namespace perfwatch::alerts {

class AlertStore {
 public:
  // conn must outlive the store.
  AlertStore(pqxx::connection& conn, std::string host) : conn_(conn), host_(std::move(host)) {}

  // The host's pending and firing alerts, with when each receiver was last notified.
  Result<std::vector<AlertRecord>> load_active();
  Result<std::map<std::string, TimePoint>> load_cursors();
  Result<void> commit(const Batch& batch);
  // Drops history, resolved alerts and finished notifications older than cutoff; returns rows deleted.
  Result<std::int64_t> apply_retention(TimePoint cutoff);

 private:
  int host_id(pqxx::transaction_base& tx);

  pqxx::connection& conn_;
  std::string host_;
  int host_id_ = -1;
};

}  // namespace perfwatch::alerts
