#include "dashboard/server.h"

#include <Poco/DeflatingStream.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <sstream>

#include "common/log.h"

namespace perfwatch::dashboard {
namespace {

// Below this size compression saves less than it costs.
constexpr std::size_t gzip_min_bytes = 4096;

bool accepts_gzip(const Poco::Net::HTTPServerRequest& request) {
  return request.get("Accept-Encoding", "").find("gzip") != std::string::npos;
}

std::string gzip(const std::string& body) {
  std::ostringstream out;
  Poco::DeflatingOutputStream z(out, Poco::DeflatingStreamBuf::STREAM_GZIP, 1);
  z << body;
  z.close();
  return std::move(out).str();
}

Response to_response(const Router& router, Poco::Net::HTTPServerRequest& in) {
  const std::string& uri = in.getURI();
  const std::size_t question = uri.find('?');
  Request request;
  request.method = in.getMethod();
  Result<std::string> path = percent_decode(std::string_view(uri).substr(0, question));
  if (!path) return Response::error(400, path.error().message);
  request.path = std::move(*path);
  if (question != std::string::npos) {
    auto query = parse_query(std::string_view(uri).substr(question + 1));
    if (!query) return Response::error(400, query.error().message);
    request.query = std::move(*query);
  }
  request.authorization = in.get("Authorization", "");
  return router.dispatch(std::move(request));
}

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(const Router& router) : router_(router) {}

  void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
    Response response;
    try {
      response = to_response(router_, in);
    } catch (const std::exception& e) {
      // A bug in one handler must not take the daemon down: the request fails, the server goes on.
      log::error("dashboard request failed", {{"uri", in.getURI()}, {"error", e.what()}});
      response = Response::error(500, "internal error");
    }
    out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
    out.setContentType(response.content_type);
    out.set("X-Content-Type-Options", "nosniff");
    out.set("Cache-Control", "no-store");
    for (const auto& [name, value] : response.headers) out.set(name, value);
    if (response.body.size() >= gzip_min_bytes && accepts_gzip(in) &&
        response.content_type != "application/octet-stream") {
      response.body = gzip(response.body);
      out.set("Content-Encoding", "gzip");
    }
    out.setContentLength(static_cast<std::streamsize>(response.body.size()));
    if (in.getMethod() == "HEAD") {
      out.send();
      return;
    }
    out.sendBuffer(response.body.data(), response.body.size());
  }

 private:
  const Router& router_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(const Router& router) : router_(router) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(router_);
  }

 private:
  const Router& router_;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options, const Router& router) {
  std::unique_ptr<Server> server(new Server());
  try {
    // "[::1]:7460" and "host:port" are both SocketAddress syntax.
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(options.listen), 64);
    server->port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams();  // reference-counted: the server owns it
    params->setMaxThreads(options.threads);
    params->setMaxQueued(options.queue);
    params->setTimeout(Poco::Timespan(options.timeout_s, 0));
    // One thread serves one connection for as long as it stays open, so keep-alive would let a few idle
    // clients hold every thread of the bounded pool; a connection per request keeps the pool for work.
    params->setKeepAlive(false);
    params->setServerName("perfwatch");
    server->threads_ = std::make_unique<Poco::ThreadPool>(2, options.threads);
    server->http_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(router), *server->threads_, socket, params);
    server->http_->start();
  } catch (const Poco::Exception& e) {
    return make_error("cannot serve the dashboard on " + options.listen + ": " + e.displayText());
  }
  return server;
}

Server::~Server() {
  if (http_) http_->stopAll(true);
  if (threads_) threads_->joinAll();
}

}  // namespace perfwatch::dashboard
