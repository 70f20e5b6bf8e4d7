#include "alerts/dispatcher.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <random>
#include <thread>

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

// A receiver's sends, one round at a time, on a thread of its own.
class Dispatcher::Lane {
 public:
  Lane() : thread_([this] { run(); }) {}
  ~Lane() {  // finishes the round in flight; one not yet started is dropped (its rows stay pending)
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  void start(std::function<void()> round) {
    busy = true;
    {
      std::lock_guard lock(mutex_);
      round_ = std::move(round);
    }
    wake_.notify_all();
  }

  // The dispatcher's thread only: a round was handed out and its outcomes are not recorded yet.
  bool busy = false;

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || round_; });
      if (stopping_) return;
      std::function<void()> round = std::move(round_);
      round_ = nullptr;
      lock.unlock();
      round();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::function<void()> round_;
  bool stopping_ = false;
  std::thread thread_;
};

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
    bool worked = false;
    try {
      worked = deliver_due(*outbox);
    } catch (const std::exception& e) {
      log::warn("alert delivery lost the database; reconnecting", {{"error", e.what()}});
      outbox.reset();
      conn.reset();
    }
    lock.lock();
    // Woken early by a lane that finished, by new notifications or by stop().
    if (!worked && outbox) sleep(lock, options_.poll);
  }
  lock.unlock();
  lanes_.clear();  // waits for the requests in flight
  if (!outbox) return;  // their outcomes go unrecorded: those rows are sent again later (at least once)
  try {
    deliver_due(*outbox);
  } catch (const std::exception& e) {
    log::warn("alert delivery could not record its last sends; they will be sent again", {{"error", e.what()}});
  }
}

bool Dispatcher::deliver_due(Outbox& outbox) {
  std::vector<Finished> finished;
  std::vector<ResolvedReceiver> receivers;
  bool stopping = false;
  {
    std::lock_guard lock(mutex_);
    finished.swap(finished_);
    receivers = options_.receivers;
    stopping = stopping_;
  }
  // Lanes are free again first: should recording fail, their rows are sent again, never stuck.
  for (const Finished& f : finished)
    if (auto it = lanes_.find(f.receiver.config.name); it != lanes_.end()) it->second->busy = false;
  for (const Finished& f : finished)
    for (const Sent& sent : f.sends) record(outbox, f.receiver, sent);
  if (stopping) return true;

  auto configured = [&](const std::string& name) {
    return std::any_of(receivers.begin(), receivers.end(), [&](const auto& r) { return r.config.name == name; });
  };
  std::erase_if(lanes_, [&](const auto& lane) { return !lane.second->busy && !configured(lane.first); });

  Result<OutboxBacklog> backlog = outbox.backlog();
  if (!backlog) throw std::runtime_error(backlog.error().message);
  {
    std::lock_guard lock(mutex_);
    stats_.backlog = *backlog;
  }
  std::vector<std::string> idle;
  for (const ResolvedReceiver& r : receivers)
    if (auto it = lanes_.find(r.config.name); it == lanes_.end() || !it->second->busy) idle.push_back(r.config.name);
  if (idle.empty()) return !finished.empty();
  Result<std::vector<OutboxRow>> due = outbox.due(idle, options_.batch);
  if (!due) throw std::runtime_error(due.error().message);
  if (due->empty()) return !finished.empty();

  for (const ResolvedReceiver& receiver : receivers) {
    // Groups in the order the oldest notification of each was queued.
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
    if (order.empty()) continue;
    std::vector<std::vector<OutboxRow>> round;
    for (const std::string& key : order) round.push_back(std::move(groups[key]));
    std::unique_ptr<Lane>& lane = lanes_[receiver.config.name];
    if (!lane) lane = std::make_unique<Lane>();
    lane->start([this, receiver, round = std::move(round)]() mutable {
      Finished done{receiver, {}};
      for (std::vector<OutboxRow>& rows : round) {
        {
          std::lock_guard lock(mutex_);
          if (stopping_) break;
        }
        done.sends.push_back(send(receiver, std::move(rows)));
      }
      {
        std::lock_guard lock(mutex_);
        finished_.push_back(std::move(done));
      }
      wake();
    });
  }
  return true;
}

Dispatcher::Sent Dispatcher::send(const ResolvedReceiver& receiver, std::vector<OutboxRow> rows) {
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
  return {std::move(rows), client_->post(request)};
}

void Dispatcher::record(Outbox& outbox, const ResolvedReceiver& receiver, const Sent& sent) {
  const config::Receiver& r = receiver.config;
  const std::vector<OutboxRow>& rows = sent.rows;
  const Result<HttpResponse>& response = sent.response;
  const Labels& labels = rows.front().notice.labels;
  const std::string group = labels.count("alertname") ? labels.at("alertname") : "";

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
