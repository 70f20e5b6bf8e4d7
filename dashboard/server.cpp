#include "dashboard/server.h"

#include <arpa/inet.h>

#include <Poco/DeflatingStream.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/ThreadPool.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/log.h"

namespace perfwatch::dashboard {
namespace {

// Below this size compression saves less than it costs.
constexpr std::size_t gzip_min_bytes = 4096;

std::string gzip(const std::string& body) {
  std::ostringstream out;
  Poco::DeflatingOutputStream z(out, Poco::DeflatingStreamBuf::STREAM_GZIP, 1);
  z << body;
  z.close();
  return std::move(out).str();
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// "name:port", "[v6]:port", "name" (port nullopt): the name and the port, or nullopt when malformed.
std::optional<std::pair<std::string, std::optional<std::uint16_t>>> split_authority(std::string_view text) {
  std::string_view name = text, port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = text.substr(0, close + 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
    port = rest.empty() ? rest : rest.substr(1);
  } else if (const std::size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    name = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (name.ends_with('.')) name.remove_suffix(1);  // the absolute form of a DNS name
  if (name.empty()) return std::nullopt;
  if (port.data() == nullptr || (port.empty() && !text.ends_with(':'))) return std::pair{lower(name), std::nullopt};
  std::uint16_t number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc{} || end != port.data() + port.size()) return std::nullopt;
  return std::pair{lower(name), std::optional(number)};
}

bool ip_literal(const std::string& name) {
  unsigned char address[16];
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    return inet_pton(AF_INET6, name.substr(1, name.size() - 2).c_str(), address) == 1;
  return inet_pton(AF_INET, name.c_str(), address) == 1;
}

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Printable ASCII stays, every other byte is written %XX.
std::string header_value(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 15];
    }
  }
  return out;
}

}  // namespace

HostCheck::HostCheck(std::string_view listen, std::uint16_t port, const std::vector<std::string>& names) : port_(port) {
  if (auto own = split_authority(listen)) names_.push_back(own->first + ":" + std::to_string(port));
  for (const std::string& name : names)
    if (auto entry = split_authority(name)) names_.push_back(entry->first + ":" + std::to_string(entry->second.value_or(port)));
}

std::optional<std::string> HostCheck::refuse(std::string_view host) const {
  const auto answered = [&] {
    std::string list = "an IP address or localhost on port " + std::to_string(port_);
    for (const std::string& name : names_) list += ", " + name;
    return list;
  };
  const auto parsed = split_authority(host);
  if (parsed) {
    const auto& [name, port] = *parsed;
    const std::vector<std::uint16_t> ports = port ? std::vector<std::uint16_t>{*port} : std::vector<std::uint16_t>{80, 443};
    for (const std::uint16_t p : ports) {
      if (p == port_ && (ip_literal(name) || name == "localhost")) return std::nullopt;
      if (std::find(names_.begin(), names_.end(), name + ":" + std::to_string(p)) != names_.end()) return std::nullopt;
    }
  }
  return "Host '" + std::string(host) + "' is not this dashboard's (it answers " + answered() +
         "; a page of another site may be reading it through DNS rebinding; to browse it under another name, "
         "set alerts.external_url to it)";
}

std::vector<std::string> host_names(std::string_view listen, std::string_view external_url, const std::string& hostname) {
  std::vector<std::string> names;
  for (const auto& [scheme, port] : {std::pair<std::string_view, std::string_view>{"http://", "80"}, {"https://", "443"}}) {
    if (!external_url.starts_with(scheme)) continue;
    const std::string_view rest = external_url.substr(scheme.size());
    const std::string authority(rest.substr(0, rest.find_first_of("/?#")));
    const auto parsed = split_authority(authority);
    if (parsed) names.push_back(parsed->first + ":" + (parsed->second ? std::to_string(*parsed->second) : std::string(port)));
  }
  const std::string host(listen.substr(0, listen.rfind(':')));
  if ((host == "0.0.0.0" || host == "[::]") && !hostname.empty()) names.push_back(hostname);
  return names;
}

Response answer(const Router& router, const HostCheck& hosts, const Incoming& in) {
  try {
    if (!in.host) return Response::error(400, "missing Host header");
    if (auto refused = hosts.refuse(*in.host)) return Response::error(421, *refused);
    const std::size_t question = in.uri.find('?');
    Request request;
    request.method = in.method;
    Result<std::string> path = percent_decode(std::string_view(in.uri).substr(0, question));
    if (!path) return Response::error(400, path.error().message);
    request.path = std::move(*path);
    if (question != std::string::npos) {
      auto query = parse_query(std::string_view(in.uri).substr(question + 1));
      if (!query) return Response::error(400, query.error().message);
      request.query = std::move(*query);
    }
    request.authorization = in.authorization;
    return router.dispatch(std::move(request));
  } catch (const std::exception& e) {
    // A bug in one handler must not take the daemon down: the request fails, the server goes on.
    log::error("dashboard request failed", {{"uri", in.uri}, {"error", e.what()}});
    return Response::error(500, "internal error");
  }
}

void write_head(const Response& response, Poco::Net::HTTPResponse& out) {
  out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
  out.setContentType(header_value(response.content_type));
  out.set("X-Content-Type-Options", "nosniff");
  out.set("Cache-Control", "no-store");
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), token_char)) {
      log::error("dashboard handler set an invalid header name; dropped", {{"name", name}});
      continue;
    }
    out.set(name, header_value(value));
  }
}

namespace {

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(const Router& router, const HostCheck& hosts) : router_(router), hosts_(hosts) {}

  void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
    Incoming incoming{in.getMethod(), in.getURI(), std::nullopt, in.get("Authorization", "")};
    if (in.has("Host")) incoming.host = in.getHost();
    Response response = answer(router_, hosts_, incoming);
    if (response.body.size() >= gzip_min_bytes && in.get("Accept-Encoding", "").find("gzip") != std::string::npos &&
        response.content_type != "application/octet-stream") {
      response.body = gzip(response.body);
      response.headers.emplace_back("Content-Encoding", "gzip");
    }
    write_head(response, out);
    out.setContentLength(static_cast<std::streamsize>(response.body.size()));
    if (in.getMethod() == "HEAD") {
      out.send();
      return;
    }
    out.sendBuffer(response.body.data(), response.body.size());
  }

 private:
  const Router& router_;
  const HostCheck& hosts_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  HandlerFactory(const Router& router, const HostCheck& hosts) : router_(router), hosts_(hosts) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(router_, hosts_);
  }

 private:
  const Router& router_;
  const HostCheck& hosts_;
};

}  // namespace

// Shuts down the socket of every connection older than the deadline: the thread serving it then sees the
// connection end, however slowly the client sends or reads. Poco's own timeouts bound each send and
// receive only, not a request made of many slow ones.
class Server::Deadlines {
 public:
  explicit Deadlines(std::chrono::milliseconds limit) : limit_(limit), thread_([this] { run(); }) {}
  ~Deadlines() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  std::uint64_t watch(const Poco::Net::StreamSocket& socket) {
    std::lock_guard lock(mutex_);
    const std::uint64_t id = ++last_id_;
    watched_.emplace(id, Watched{socket, std::chrono::steady_clock::now() + limit_});
    wake_.notify_one();
    return id;
  }
  void forget(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    watched_.erase(id);
  }
  // The server stops: every connection ends now.
  void cut_all() {
    std::lock_guard lock(mutex_);
    for (auto& [id, w] : watched_) cut(w.socket);
  }

 private:
  struct Watched {
    Poco::Net::StreamSocket socket;  // shares the connection's socket
    std::chrono::steady_clock::time_point deadline;
  };
  static void cut(Poco::Net::StreamSocket& socket) {
    try {
      socket.shutdown();
    } catch (const Poco::Exception&) {
      // already closed: nothing to cut
    }
  }
  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      auto next = std::chrono::steady_clock::time_point::max();
      const auto now = std::chrono::steady_clock::now();
      for (auto it = watched_.begin(); it != watched_.end();) {
        if (it->second.deadline <= now) {
          log::debug("dashboard request cut off at its deadline", {{"timeout_ms", limit_.count()}});
          cut(it->second.socket);
          it = watched_.erase(it);
        } else {
          next = std::min(next, it->second.deadline);
          ++it;
        }
      }
      wake_.wait_until(lock, next);
    }
  }

  const std::chrono::milliseconds limit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::uint64_t last_id_ = 0;
  std::map<std::uint64_t, Watched> watched_;
  std::thread thread_;
};

namespace {

class Connection final : public Poco::Net::HTTPServerConnection {
 public:
  Connection(const Poco::Net::StreamSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
             Poco::Net::HTTPRequestHandlerFactory::Ptr factory, std::uint64_t id, std::function<void(std::uint64_t)> done)
      : HTTPServerConnection(socket, std::move(params), std::move(factory)), id_(id), done_(std::move(done)) {}
  ~Connection() override { done_(id_); }

 private:
  std::uint64_t id_;
  std::function<void(std::uint64_t)> done_;
};

}  // namespace

Server::Server() = default;

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options, const Router& router) {
  std::unique_ptr<Server> server(new Server());
  try {
    // "[::1]:7460" and "host:port" are both SocketAddress syntax.
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(options.listen), 64);
    server->port_ = socket.address().port();
    server->hosts_ = std::make_unique<HostCheck>(options.listen, server->port_, options.host_names);
    server->deadlines_ = std::make_unique<Deadlines>(options.request_timeout);
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams();
    params->setMaxThreads(options.threads);
    params->setMaxQueued(options.queue);
    params->setTimeout(Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(options.request_timeout).count()));
    // One thread serves one connection for as long as it stays open, so keep-alive would let a few idle
    // clients hold every thread of the bounded pool; a connection per request keeps the pool for work.
    params->setKeepAlive(false);
    params->setServerName("perfwatch");
    Poco::Net::HTTPRequestHandlerFactory::Ptr handlers = new HandlerFactory(router, *server->hosts_);
    Deadlines* deadlines = server->deadlines_.get();
    struct Factory final : Poco::Net::TCPServerConnectionFactory {
      Poco::Net::HTTPServerParams::Ptr params;
      Poco::Net::HTTPRequestHandlerFactory::Ptr handlers;
      Deadlines* deadlines;
      Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
        return new Connection(socket, params, handlers, deadlines->watch(socket),
                              [d = deadlines](std::uint64_t id) { d->forget(id); });
      }
    };
    auto* factory = new Factory();
    factory->params = params;
    factory->handlers = handlers;
    factory->deadlines = deadlines;
    server->threads_ = std::make_unique<Poco::ThreadPool>(std::min(2, options.threads), options.threads);
    server->tcp_ = std::make_unique<Poco::Net::TCPServer>(factory, *server->threads_, socket, params);
    server->tcp_->start();
  } catch (const Poco::Exception& e) {
    return make_error("cannot serve the dashboard on " + options.listen + ": " + e.displayText());
  }
  return server;
}

Server::~Server() {
  if (tcp_) tcp_->stop();
  if (deadlines_) deadlines_->cut_all();
  if (threads_) threads_->joinAll();
}

}  // namespace perfwatch::dashboard
