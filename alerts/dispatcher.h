#pragma once
// Delivers the outbox from a background thread: due notifications are grouped (per alertname, host
// and target for webhooks; all together for an Alertmanager), formatted and POSTed. 2xx: delivered.
// Transport errors (a timeout among them: `timeout` bounds each request whole), 5xx, 408 and 429:
// retried with exponential backoff and jitter (backoff.h), for as long as it takes. Any other status:
// not retried, marked failed and logged with the receiver's answer. A restart loses nothing: the
// outbox is in PostgreSQL; a notification sent just before a crash, whose delivery was not recorded
// yet, is sent again (at least once).
//
// Each receiver sends on a thread of its own (a lane), so a slow or stuck receiver delays only its own
// notifications. The dispatcher's thread alone reads the outbox and records what became of each send;
// a receiver's due rows are not read again while its lane has sends out or outcomes unrecorded.
#include <chrono>
#include <cstdint>
#include <map>
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
  ~Dispatcher();  // finishes the requests in flight, then stops

  void set_receivers(std::vector<ResolvedReceiver> receivers, std::string external_url);
  DispatcherStats stats() const;

 private:
  class Lane;
  // One POST and its answer (or transport error), for the rows it carried.
  struct Sent {
    std::vector<OutboxRow> rows;
    Result<HttpResponse> response;
  };
  // What a lane finished: every group of one round of one receiver.
  struct Finished {
    ResolvedReceiver receiver;
    std::vector<Sent> sends;
  };

  void run();
  // Records what the lanes finished; then hands the due rows of idle receivers to their lanes.
  // False when there was nothing to do.
  bool deliver_due(Outbox& outbox);
  void record(Outbox& outbox, const ResolvedReceiver& receiver, const Sent& sent);
  // Runs on a lane's thread.
  Sent send(const ResolvedReceiver& receiver, std::vector<OutboxRow> rows);

  DispatcherOptions options_;
  std::shared_ptr<HttpClient> client_;
  DispatcherStats stats_;
  std::vector<Finished> finished_;                  // guarded by mutex_
  std::map<std::string, std::unique_ptr<Lane>> lanes_;  // by receiver name; the dispatcher's thread only
};

}  // namespace perfwatch::alerts
