#include "alerts/http_client.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>

#include <sys/socket.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/duration.h"

namespace perfwatch::alerts {
namespace {

constexpr std::size_t max_logged_body = 4096;

std::unique_ptr<Poco::Net::HTTPClientSession> session_for(const Poco::URI& uri, const std::string& ca_file) {
  if (uri.getScheme() != "https") return std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  static std::once_flag ssl_initialized;
  std::call_once(ssl_initialized, [] { Poco::Net::initializeSSL(); });
  // Verifies the chain and the host name; with ca_file, against that CA only.
  Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", ca_file,
                                                           Poco::Net::Context::VERIFY_RELAXED, 9, ca_file.empty());
  return std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), context);
}

// Poco's timeout bounds each socket operation, so a receiver that answers one byte at a time would
// hold a request for ever. This bounds the answer as a whole: at the deadline the socket is shut down,
// which fails the read in progress. Destroyed before the session closes the socket.
class AnswerDeadline {
 public:
  AnswerDeadline(int fd, std::chrono::milliseconds after) : fd_(fd), thread_([this, after] { run(after); }) {}
  ~AnswerDeadline() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_changed_.notify_all();
    thread_.join();
  }
  AnswerDeadline(const AnswerDeadline&) = delete;
  AnswerDeadline& operator=(const AnswerDeadline&) = delete;

  bool expired() const {
    std::lock_guard lock(mutex_);
    return expired_;
  }

 private:
  void run(std::chrono::milliseconds after) {
    std::unique_lock lock(mutex_);
    if (done_changed_.wait_for(lock, after, [&] { return done_; })) return;
    expired_ = true;
    ::shutdown(fd_, SHUT_RDWR);
  }

  const int fd_;
  mutable std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  bool expired_ = false;
  std::thread thread_;
};

}  // namespace

Result<HttpResponse> PocoHttpClient::post(const HttpRequest& request) {
  try {
    const Poco::URI uri(request.url);
    auto session = session_for(uri, request.ca_file);
    session->setTimeout(Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(request.timeout).count()));
    Poco::Net::HTTPRequest http(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathEtc().empty() ? "/" : uri.getPathEtc(),
                                Poco::Net::HTTPMessage::HTTP_1_1);
    http.setContentType("application/json");
    http.set("User-Agent", "perfwatch");
    for (const auto& [name, value] : request.headers) http.set(name, value);
    http.setContentLength(static_cast<std::streamsize>(request.body.size()));
    session->sendRequest(http) << request.body;
    AnswerDeadline deadline(session->socket().impl()->sockfd(), request.timeout);
    try {
      Poco::Net::HTTPResponse response;
      std::istream& in = session->receiveResponse(response);
      HttpResponse out;
      out.status = static_cast<int>(response.getStatus());
      char buf[1024];
      while (in && out.body.size() < max_logged_body) {
        in.read(buf, sizeof buf);
        out.body.append(buf, static_cast<std::size_t>(in.gcount()));
      }
      if (deadline.expired()) return make_error("no complete answer within " + format_duration(request.timeout));
      if (out.body.size() > max_logged_body) out.body.resize(max_logged_body);
      return out;
    } catch (const Poco::Exception& e) {
      if (deadline.expired()) return make_error("no complete answer within " + format_duration(request.timeout));
      throw;
    }
  } catch (const Poco::Exception& e) {
    return make_error(e.displayText());
  } catch (const std::exception& e) {
    return make_error(e.what());
  }
}

}  // namespace perfwatch::alerts
