#pragma once
// The dashboard's HTTP server: Poco's HTTP connections on dashboard.listen with a bounded thread pool and a
// bounded connection queue, translating requests to the Router and back. No CORS headers are sent, so
// browsers keep other sites' pages from reading the API; the Host check keeps them from reading it through
// DNS rebinding (their own name resolving to this address) as well.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dashboard/router.h"

namespace Poco {
class ThreadPool;
namespace Net {
class HTTPResponse;
class TCPServer;
}  // namespace Net
}  // namespace Poco

namespace perfwatch::dashboard {

struct ServerOptions {
  std::string listen = "127.0.0.1:7460";  // HOST:PORT, as config::Dashboard::listen; port 0 picks one
  int threads = 8;      // requests served at once
  int queue = 64;       // accepted connections waiting for a thread; more are refused
  // A connection is cut off this long after a thread takes it, whatever it is doing (a client sending its
  // request a byte at a time, or reading the answer as slowly); also the socket's send/receive timeout.
  std::chrono::milliseconds request_timeout{30'000};
  // More names the server answers to (see HostCheck): "NAME:PORT", or "NAME" on the listen port.
  std::vector<std::string> host_names;
};

// Which Host headers the server answers. A browser sends the name it resolved; a page that makes its own
// name resolve to this address (DNS rebinding) sends its own name, which is refused. Answered: on the port
// the server listens on, an IP address (no page can make a browser send another site's address as Host),
// "localhost" and the listen address's own name; and the configured names, on their own ports. A Host
// without a port is taken as port 80 or 443, the ports a browser leaves out.
class HostCheck {
 public:
  HostCheck(std::string_view listen, std::uint16_t port, const std::vector<std::string>& names);
  // Why the Host header is refused; nullopt when it is answered.
  std::optional<std::string> refuse(std::string_view host) const;

 private:
  std::uint16_t port_;
  std::vector<std::string> names_;  // lower case "name:port"
};

// A request as the server reads it, before routing.
struct Incoming {
  std::string method;
  std::string uri;                  // as sent: path and query, still percent-encoded
  std::optional<std::string> host;  // the Host header
  std::string authorization;
};

// The answer to a request: the Host check, path and query decoding, then the router. Never throws: a
// handler's exception is a 500 (and logged).
Response answer(const Router& router, const HostCheck& hosts, const Incoming& request);

// The one place response headers are set. Names that are not HTTP tokens are dropped (a handler's bug,
// logged); every byte of a value outside printable ASCII is written %XX, so nothing a request carries can
// end a header line or the head.
void write_head(const Response& response, Poco::Net::HTTPResponse& out);

// The names a daemon's server answers besides its own address: the authority of `external_url` (alerts'
// links, where a proxy or a DNS name may lead), and this machine's `hostname` when `listen` is every
// interface's (0.0.0.0 or [::]).
std::vector<std::string> host_names(std::string_view listen, std::string_view external_url, const std::string& hostname);

class Server {
 public:
  // Binds and starts serving `router`, which must outlive the server. Fails (saying why) when the
  // address cannot be bound.
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, const Router& router);
  ~Server();  // stops accepting, cuts off requests in flight
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  class Deadlines;
  Server();
  std::unique_ptr<HostCheck> hosts_;
  std::unique_ptr<Deadlines> deadlines_;
  std::unique_ptr<Poco::ThreadPool> threads_;
  std::unique_ptr<Poco::Net::TCPServer> tcp_;
  std::uint16_t port_ = 0;
};

}  // namespace perfwatch::dashboard
