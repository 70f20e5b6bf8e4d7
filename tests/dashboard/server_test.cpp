// The Poco server around the Router over real HTTP: what a request carries never shapes a response
// header, whatever a handler puts there.
#include "dashboard/server.h"

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Exception.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace perfwatch::dashboard {
namespace {

// Sends `head` as it is and returns the response's status line and headers, up to the blank line.
std::string raw_response_head(std::uint16_t port, const std::string& head) {
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port));
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  socket.sendBytes(head.data(), static_cast<int>(head.size()));
  std::string text;
  char buffer[4096];
  for (int n; (n = socket.receiveBytes(buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
  return text.substr(0, text.find("\r\n\r\n") + 2);  // through the last header's CR LF
}

// A handler that echoes what the request carries into headers, as the exports do with the target name.
TEST(ServerHeaders, NoRequestByteReachesAResponseHeaderUnescaped) {
  Router router;
  router.add("GET", "/echo/{name}", Router::Access::open, [](const Request& r) {
    Response out = Response::bytes("text/plain", "x");
    out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + r.params.at("name") + "\"");
    out.headers.emplace_back("X-Echo", r.get("v") ? *r.get("v") : "");
    out.headers.emplace_back("X-Bad\r\nX-Name", "1");
    return out;
  });
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto server = Server::start(options, router);
  ASSERT_TRUE(server) << server.error().message;
  const std::uint16_t port = (*server)->port();
  const std::string head = raw_response_head(
      port, "GET /echo/a%0D%0AX-Injected:%20yes%0d%0a%0d%0a<html>?v=b%0AX-Two:%201%00%7f%c3%a9 HTTP/1.1\r\n"
            "Host: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, line);  // the status line
  // Every header line is "Name: value" of visible ASCII and spaces, ended by CR LF.
  const std::regex field("[!#$%&'*+.^_`|~0-9A-Za-z-]+: [\\x20-\\x7e]*\r");
  for (; std::getline(lines, line);) {
    EXPECT_TRUE(std::regex_match(line, field)) << "header line '" << line << "' in:\n" << head;
    EXPECT_FALSE(line.starts_with("X-Injected") || line.starts_with("X-Two") || line.starts_with("X-Name") ||
                 line.starts_with("<html>"))
        << head;
  }
  EXPECT_NE(head.find("Content-Disposition: attachment; filename=\"a%0D%0AX-Injected: yes%0D%0A%0D%0A<html>\""),
            std::string::npos)
      << "the value is percent-escaped, so it can still be read:\n" << head;
}

// DNS rebinding: a page of another site makes its own name resolve to this address; the browser then sends
// that name as Host. Only this server's own names are answered.
TEST(HostCheck, AnswersOnlyThisServersNames) {
  const HostCheck loopback("127.0.0.1:7460", 7460, host_names("127.0.0.1:7460", "https://perf.example.com:8443/pw", "vm"));
  for (const char* host : {"127.0.0.1:7460", "localhost:7460", "LocalHost:7460", "[::1]:7460", "127.0.0.1.:7460",
                           "10.1.2.3:7460", "perf.example.com:8443", "PERF.example.com.:8443"})
    EXPECT_EQ(loopback.refuse(host), std::nullopt) << host;
  for (const char* host : {"evil.example:7460", "evil.example", "127.0.0.1:7461", "127.0.0.1", "perf.example.com:7460",
                           "perf.example.com", "vm:7460", "localhost.evil.example:7460", "127.0.0.1.evil.example:7460",
                           "", ":7460", "[::1", "[::1]x:7460", "127.0.0.1:74600", "127.0.0.1:-1", "\r\nX: y"})
    EXPECT_NE(loopback.refuse(host), std::nullopt) << host;
  EXPECT_NE(loopback.refuse("evil.example:7460")->find("DNS rebinding"), std::string::npos);
  // A URL without a port: its scheme's, which browsers leave out of Host.
  const HostCheck proxied("127.0.0.1:7460", 7460, host_names("127.0.0.1:7460", "https://perf.example.com/pw", ""));
  EXPECT_EQ(proxied.refuse("perf.example.com"), std::nullopt);
  EXPECT_EQ(proxied.refuse("perf.example.com:443"), std::nullopt);
  EXPECT_NE(proxied.refuse("perf.example.com:80"), std::nullopt);
  // Every interface: this machine's name too; a named listen address: that name.
  const HostCheck everywhere("0.0.0.0:80", 80, host_names("0.0.0.0:80", "http://0.0.0.0:80", "vm"));
  EXPECT_EQ(everywhere.refuse("vm"), std::nullopt);
  EXPECT_EQ(everywhere.refuse("192.168.1.5"), std::nullopt);
  EXPECT_NE(everywhere.refuse("evil.example"), std::nullopt);
  const HostCheck named("perf-01.example.com:7460", 7460, {});
  EXPECT_EQ(named.refuse("perf-01.example.com:7460"), std::nullopt);
  EXPECT_NE(named.refuse("perf-02.example.com:7460"), std::nullopt);
}

TEST(ServerHostCheck, RefusesOtherHostsWith421AndRequestsWithoutHostWith400) {
  Router router;
  router.add("GET", "/ok", Router::Access::open, [](const Request&) { return Response::bytes("text/plain", "ok"); });
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto server = Server::start(options, router);
  ASSERT_TRUE(server) << server.error().message;
  const std::string port = std::to_string((*server)->port());
  EXPECT_TRUE(raw_response_head((*server)->port(), "GET /ok HTTP/1.1\r\nHost: evil.example:" + port + "\r\n\r\n")
                  .starts_with("HTTP/1.1 421"));
  EXPECT_TRUE(raw_response_head((*server)->port(), "GET /ok HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 400") ||
              raw_response_head((*server)->port(), "GET /ok HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 400"));
  EXPECT_TRUE(raw_response_head((*server)->port(), "GET /ok HTTP/1.1\r\nHost: localhost:" + port + "\r\n\r\n")
                  .starts_with("HTTP/1.1 200"));
}

// A token others can read is no secret; the error names the file.
TEST(TokenFile, RefusedWhenGroupOrOthersCanReadIt) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("pw-token-" + std::to_string(getpid()));
  std::ofstream(path) << "s3cret \r\nsecond line\n";
  for (const mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    const auto token = read_token_file(path.string());
    ASSERT_FALSE(token) << std::oct << mode;
    EXPECT_NE(token.error().message.find(path.string() + " is readable by group or others"), std::string::npos)
        << token.error().message;
  }
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  const auto token = read_token_file(path.string());
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(*token, "s3cret");
  std::ofstream(path, std::ios::trunc) << "\n";
  EXPECT_NE(read_token_file(path.string()).error().message.find("holds no token"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(read_token_file(path.string()).error().message.find(path.string()), std::string::npos);
  EXPECT_NE(read_token_file("/tmp").error().message.find("not a regular file"), std::string::npos);
}

// A request is cut off at its deadline however slowly the client sends it, and the server stays free for
// others.
TEST(ServerDeadline, CutsOffARequestSentAByteAtATime) {
  Router router;
  router.add("GET", "/ok", Router::Access::open, [](const Request&) { return Response::bytes("text/plain", "ok"); });
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  options.request_timeout = std::chrono::milliseconds(1500);
  auto server = Server::start(options, router);
  ASSERT_TRUE(server) << server.error().message;
  Poco::Net::StreamSocket slow(Poco::Net::SocketAddress("127.0.0.1", (*server)->port()));
  const std::string head = "GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
  const auto start = std::chrono::steady_clock::now();
  bool cut = false;
  for (std::size_t i = 0; i < 100 && !cut; ++i) {
    try {
      slow.sendBytes(i < head.size() ? &head[i] : "a", 1);
      slow.setReceiveTimeout(Poco::Timespan(0, 200'000));
      char byte;
      cut = slow.receiveBytes(&byte, 1) <= 0;
    } catch (const Poco::TimeoutException&) {
    } catch (const Poco::Exception&) {
      cut = true;
    }
  }
  EXPECT_TRUE(cut);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  const std::string host = "Host: localhost:" + std::to_string((*server)->port());
  EXPECT_TRUE(raw_response_head((*server)->port(), "GET /ok HTTP/1.1\r\n" + host + "\r\n\r\n").starts_with("HTTP/1.1 200"));
}

}  // namespace
}  // namespace perfwatch::dashboard
