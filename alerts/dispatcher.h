#pragma once
// Delivers the outbox from a background thread: due notifications are grouped (per alertname, host
// and target for webhooks; all together for an Alertmanager), formatted and POSTed. 2xx: delivered.
// Transport errors, 5xx, 408 and 429: retried with exponential backoff and jitter (backoff.h), for as
// long as it takes. Any other status: not retried, marked failed and logged with the receiver's
// answer. A restart loses nothing: the outbox is in PostgreSQL; a notification sent just before a
// crash, whose delivery was not recorded yet, is sent again (at least once).
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alerts/background.h"
#include "alerts/http_client.h"
#include "alerts/outbox.h"
#include "alerts/receivers.h"
#include "storage/store.h"

namespace perfwatch::alerts {

struct DispatcherOptions {
  std::string host;
  storage::ConnectOptions connect;
  std::string external_url;
  std::vector<ResolvedReceiver> receivers;
  std::chrono::milliseconds poll{1000};  // due retries are looked for this often
  std::size_t batch = 200;               // notifications read per round
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
};

struct DispatcherStats {
  std::uint64_t delivered = 0;  // notifications
  std::uint64_t retried = 0;    // notifications whose send failed and will be tried again
  std::uint64_t failed = 0;     // notifications refused by their receiver (not retried)
  std::uint64_t requests = 0;   // HTTP requests sent
  OutboxBacklog backlog;        // as of the last delivery round (about every `poll`)
};

class Dispatcher final : public Background {
 public:
  Dispatcher(DispatcherOptions options, std::shared_ptr<HttpClient> client);
  ~Dispatcher();  // finishes the request in flight, then stops

  void set_receivers(std::vector<ResolvedReceiver> receivers, std::string external_url);
  DispatcherStats stats() const;

 private:
  void run();
  // Sends what is due; false when nothing was.
  bool deliver_due(Outbox& outbox);
  void send(Outbox& outbox, const ResolvedReceiver& receiver, const std::vector<OutboxRow>& rows);

  DispatcherOptions options_;
  std::shared_ptr<HttpClient> client_;
  DispatcherStats stats_;
};

}  // namespace perfwatch::alerts
