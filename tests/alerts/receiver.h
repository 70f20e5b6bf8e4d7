#pragma once
// A real HTTP(S) webhook receiver for the alert tests (Poco's HTTP server on 127.0.0.1): records every
// request and answers with the statuses it is told to, then 200. It can be stopped and started again
// on the same port, to play a receiver that is down for a while.
#include <Poco/Net/HTTPServer.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace perfwatch::test {

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// A certificate and its private key (PEM files): the receiver then speaks HTTPS.
struct TlsFiles {
  std::string certificate;
  std::string key;
};

class WebhookReceiver {
 public:
  explicit WebhookReceiver(std::optional<TlsFiles> tls = std::nullopt);  // listening on an ephemeral port
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hook") const;

  // The next requests get these statuses, in order; later ones get 200.
  void respond_with(std::vector<int> statuses);
  // The next request is recorded, then left unanswered until release(): a notification in flight
  // while the test changes what is queued.
  void hold_next();
  void release();
  void stop();   // closes the port: connections are refused
  void start();  // listens on the same port again

  std::vector<ReceivedRequest> requests() const;
  // Waits until at least `count` requests arrived; returns them all.
  std::vector<ReceivedRequest> wait_for(std::size_t count, std::chrono::milliseconds timeout) const;

 private:
  friend class RecordingHandler;
  int record(ReceivedRequest request);

  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<ReceivedRequest> requests_;
  std::deque<int> statuses_;
  mutable std::condition_variable released_;
  bool hold_next_ = false;
  bool holding_ = false;
  std::optional<TlsFiles> tls_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace perfwatch::test
