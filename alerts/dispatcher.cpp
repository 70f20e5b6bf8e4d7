#include "alerts/dispatcher.h"

#include <algorithm>
#include <map>
#include <random>

#include "alerts/backoff.h"
#include "alerts/formats.h"
#include "common/log.h"

namespace perfwatch::alerts {
namespace {

bool retryable(int status) { return status >= 500 || status == 408 || status == 429; }

std::string api_url(const std::string& base) {
  std::string url = base;
  while (url.ends_with('/')) url.pop_back();
  return url + "/api/v2/alerts";
}

}  // namespace

Dispatcher::Dispatcher(DispatcherOptions options, std::shared_ptr<HttpClient> client)
    : options_(std::move(options)), client_(std::move(client)) {
  thread_ = std::thread([this] { run(); });
}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::set_receivers(std::vector<ResolvedReceiver> receivers, std::string external_url) {
  {
    std::lock_guard lock(mutex_);
    options_.receivers = std::move(receivers);
    options_.external_url = std::move(external_url);
  }
  wake();
}

DispatcherStats Dispatcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Dispatcher::run() {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Outbox> outbox;
  std::chrono::milliseconds backoff{0};
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!outbox) {
      lock.unlock();
      auto connected = storage::connect_database(options_.connect);
      lock.lock();
      if (connected) {
        conn = std::move(*connected);
        outbox = std::make_unique<Outbox>(*conn, options_.host);
        backoff = std::chrono::milliseconds(0);
      } else {
        if (backoff.count() == 0) log::warn("alert delivery cannot reach the database; retrying", {{"error", connected.error().message}});
        backoff = std::clamp(backoff * 2, options_.reconnect_min, options_.reconnect_max);
        sleep(lock, backoff, false);
        continue;
      }
    }
    woken_ = false;
    lock.unlock();
    bool sent = false;
    try {
      sent = deliver_due(*outbox);
    } catch (const std::exception& e) {
      log::warn("alert delivery lost the database; reconnecting", {{"error", e.what()}});
      outbox.reset();
      conn.reset();
    }
    lock.lock();
    if (!sent && outbox) sleep(lock, options_.poll);
  }
}

bool Dispatcher::deliver_due(Outbox& outbox) {
  std::vector<ResolvedReceiver> receivers;
  {
    std::lock_guard lock(mutex_);
    receivers = options_.receivers;
  }
  Result<OutboxBacklog> backlog = outbox.backlog();
  if (!backlog) throw std::runtime_error(backlog.error().message);
  {
    std::lock_guard lock(mutex_);
    stats_.backlog = *backlog;
  }
  std::vector<std::string> names;
  for (const ResolvedReceiver& r : receivers) names.push_back(r.config.name);
  if (names.empty()) return false;
  Result<std::vector<OutboxRow>> due = outbox.due(names, options_.batch);
  if (!due) throw std::runtime_error(due.error().message);
  if (due->empty()) return false;

  // Per receiver, in the order the oldest notification of each group was queued.
  for (const ResolvedReceiver& receiver : receivers) {
    std::vector<std::string> order;
    std::map<std::string, std::vector<OutboxRow>> groups;
    for (OutboxRow& row : *due) {
      if (row.receiver != receiver.config.name) continue;
      const std::string key =
          receiver.config.kind == config::ReceiverKind::alertmanager ? "" : group_key(group_labels(row.notice));
      auto [it, fresh] = groups.try_emplace(key);
      if (fresh) order.push_back(key);
      it->second.push_back(std::move(row));
    }
    for (const std::string& key : order) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return true;
      }
      send(outbox, receiver, groups[key]);
    }
  }
  return true;
}

void Dispatcher::send(Outbox& outbox, const ResolvedReceiver& receiver, const std::vector<OutboxRow>& rows) {
  const config::Receiver& r = receiver.config;
  std::vector<Notice> notices;
  for (const OutboxRow& row : rows) notices.push_back(row.notice);
  HttpRequest request;
  request.headers = receiver.headers;
  request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(r.timeout);
  request.ca_file = r.ca_file;
  std::string external_url;
  {
    std::lock_guard lock(mutex_);
    external_url = options_.external_url;
    ++stats_.requests;
  }
  if (r.kind == config::ReceiverKind::alertmanager) {
    request.url = api_url(r.url);
    request.body = alertmanager_push(notices, profile::Clock::now(), r.repeat()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    request.url = r.url;
    request.body = webhook_payload(r.format, notices, r.name, external_url).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const Result<HttpResponse> response = client_->post(request);
  const std::string group = notices.front().labels.count("alertname") ? notices.front().labels.at("alertname") : "";

  Result<void> recorded;
  if (response && response->status >= 200 && response->status < 300) {
    recorded = outbox.delivered(rows);
    log::info("notification delivered", {{"receiver", r.name}, {"alertname", group}, {"alerts", rows.size()},
                                        {"status", response->status}});
    std::lock_guard lock(mutex_);
    stats_.delivered += rows.size();
  } else if (!response || retryable(response->status)) {
    int attempt = 0;
    for (const OutboxRow& row : rows) attempt = std::max(attempt, row.attempts + 1);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const Duration delay =
        backoff_delay(attempt, r.backoff_initial, r.backoff_max, std::uniform_real_distribution<double>(0, 1)(rng));
    const std::string error = response ? "HTTP " + std::to_string(response->status) + ": " + response->body
                                       : "transport: " + response.error().message;
    recorded = outbox.retry(rows, profile::Clock::now() + std::chrono::duration_cast<profile::Clock::duration>(delay),
                            error);
    const auto retry_in = std::chrono::duration_cast<std::chrono::milliseconds>(delay);
    log::warn("notification not delivered; retrying", {{"receiver", r.name}, {"alertname", group}, {"attempt", attempt},
                                                       {"retry_in", format_duration(retry_in)}, {"error", error}});
    std::lock_guard lock(mutex_);
    stats_.retried += rows.size();
  } else {
    const std::string error = "HTTP " + std::to_string(response->status) + ": " + response->body;
    recorded = outbox.failed(rows, error);
    log::error("receiver refused the notification; not retried",
               {{"receiver", r.name}, {"alertname", group}, {"alerts", rows.size()}, {"error", error}});
    std::lock_guard lock(mutex_);
    stats_.failed += rows.size();
  }
  if (!recorded) throw std::runtime_error(recorded.error().message);
}

}  // namespace perfwatch::alerts
