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
#include <thread>
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

// A receiver that accepts connections, reads the request and then answers one byte a second, for as
// long as the client waits (a status line, then a header that never ends): a stuck or overloaded
// receiver, which no per-read timeout detects.
class TricklingReceiver {
 public:
  TricklingReceiver();  // listening on an ephemeral port of 127.0.0.1
  ~TricklingReceiver();
  TricklingReceiver(const TricklingReceiver&) = delete;
  TricklingReceiver& operator=(const TricklingReceiver&) = delete;

  std::string url() const;
  // Connections accepted so far, and how many of them the client has closed.
  std::size_t accepted() const;
  std::size_t closed_by_client() const;
  // Waits until at least `count` connections were accepted.
  bool wait_accepted(std::size_t count, std::chrono::milliseconds timeout) const;

 private:
  void accept_loop();
  void trickle(int fd);

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::size_t accepted_ = 0;
  std::size_t closed_by_client_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> tricklers_;  // guarded by mutex_ until accepter_ is joined
  std::thread accepter_;
};

}  // namespace perfwatch::test
