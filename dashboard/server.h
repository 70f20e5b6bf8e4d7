#pragma once
// The dashboard's HTTP server: Poco's HTTPServer on dashboard.listen with a bounded thread pool and a
// bounded connection queue, translating requests to the Router and back. No CORS headers are sent, so
// browsers keep other sites' pages from reading the API.
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "dashboard/router.h"

namespace Poco {
class ThreadPool;
namespace Net {
class HTTPServer;
}
}  // namespace Poco

namespace perfwatch::dashboard {

struct ServerOptions {
  std::string listen = "127.0.0.1:7460";  // HOST:PORT, as config::Dashboard::listen; port 0 picks one
  int threads = 8;      // requests served at once
  int queue = 64;       // accepted connections waiting for a thread; more are refused
  int timeout_s = 30;   // socket send/receive timeout
};

class Server {
 public:
  // Binds and starts serving `router`, which must outlive the server. Fails (saying why) when the
  // address cannot be bound.
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, const Router& router);
  ~Server();  // stops accepting, waits for requests in flight
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  Server() = default;
  std::unique_ptr<Poco::ThreadPool> threads_;
  std::unique_ptr<Poco::Net::HTTPServer> http_;
  std::uint16_t port_ = 0;
};

}  // namespace perfwatch::dashboard
