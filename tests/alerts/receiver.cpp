#include "tests/alerts/receiver.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace perfwatch::test {

class RecordingHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RecordingHandler(WebhookReceiver& receiver) : receiver_(receiver) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
    ReceivedRequest r;
    r.method = request.getMethod();
    r.path = request.getURI();
    for (const auto& [name, value] : request) r.headers[name] = value;
    Poco::StreamCopier::copyToString(request.stream(), r.body);
    const int status = receiver_.record(std::move(r));
    response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    response.setContentType("text/plain");
    response.send() << "status " << status;
  }

 private:
  WebhookReceiver& receiver_;
};

namespace {

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(WebhookReceiver& receiver) : receiver_(receiver) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new RecordingHandler(receiver_);
  }

 private:
  WebhookReceiver& receiver_;
};

}  // namespace

WebhookReceiver::WebhookReceiver(std::optional<TlsFiles> tls) : tls_(std::move(tls)) { start(); }

WebhookReceiver::~WebhookReceiver() { stop(); }

std::string WebhookReceiver::url(const std::string& path) const {
  return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_) + path;
}

void WebhookReceiver::respond_with(std::vector<int> statuses) {
  std::lock_guard lock(mutex_);
  statuses_.assign(statuses.begin(), statuses.end());
}

void WebhookReceiver::start() {
  Poco::Net::ServerSocket socket;
  if (tls_) {
    Poco::Net::initializeSSL();
    socket = Poco::Net::SecureServerSocket(new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, tls_->key,
                                                                  tls_->certificate, "", Poco::Net::Context::VERIFY_NONE));
  }
  socket.bind(Poco::Net::SocketAddress("127.0.0.1", port_), true);
  socket.listen();
  port_ = socket.address().port();
  auto params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(false);
  server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket, params);
  server_->start();
}

void WebhookReceiver::stop() {
  release();
  if (!server_) return;
  server_->stopAll(true);
  server_.reset();
}

void WebhookReceiver::hold_next() {
  std::lock_guard lock(mutex_);
  hold_next_ = true;
}

void WebhookReceiver::release() {
  {
    std::lock_guard lock(mutex_);
    holding_ = false;
  }
  released_.notify_all();
}

int WebhookReceiver::record(ReceivedRequest request) {
  std::unique_lock lock(mutex_);
  requests_.push_back(std::move(request));
  arrived_.notify_all();
  if (hold_next_) {
    hold_next_ = false;
    holding_ = true;
    released_.wait(lock, [&] { return !holding_; });
  }
  if (statuses_.empty()) return 200;
  const int status = statuses_.front();
  statuses_.pop_front();
  return status;
}

std::vector<ReceivedRequest> WebhookReceiver::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<ReceivedRequest> WebhookReceiver::wait_for(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
  return requests_;
}

TricklingReceiver::TricklingReceiver() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0)
    throw std::runtime_error("trickling receiver: cannot listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accepter_ = std::thread([this] { accept_loop(); });
}

TricklingReceiver::~TricklingReceiver() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);  // ends the accept()
  accepter_.join();
  for (std::thread& t : tricklers_) t.join();
  ::close(listen_fd_);
}

std::string TricklingReceiver::url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

std::size_t TricklingReceiver::accepted() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

std::size_t TricklingReceiver::closed_by_client() const {
  std::lock_guard lock(mutex_);
  return closed_by_client_;
}

bool TricklingReceiver::wait_accepted(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return accepted_ >= count; });
}

void TricklingReceiver::accept_loop() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(mutex_);
    if (fd < 0 || stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    ++accepted_;
    changed_.notify_all();
    tricklers_.emplace_back([this, fd] { trickle(fd); });
  }
}

void TricklingReceiver::trickle(int fd) {
  // The request first (its headers and the little JSON body), then the answer at a byte a second.
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 200) > 0 && ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  const std::string answer = "HTTP/1.1 200 OK\r\nX-Slow: " + std::string(1 << 16, 'a');
  for (char c : answer) {
    {
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) break;
    }
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      std::lock_guard lock(mutex_);
      ++closed_by_client_;
      break;
    }
  }
  ::close(fd);
}

}  // namespace perfwatch::test
