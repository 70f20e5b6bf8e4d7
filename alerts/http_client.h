#pragma once
// POSTs notifications over HTTP or HTTPS with Poco (Poco::Net::HTTPClientSession, and
// HTTPSClientSession from Poco NetSSL, verifying the server against the system's CAs or ca_file).
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace perfwatch::alerts {

struct HttpRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as application/json
  std::chrono::milliseconds timeout{10000};
  std::string ca_file;  // https: trust this CA instead of the system's
};

struct HttpResponse {
  int status = 0;
  std::string body;  // at most the first 4 KB, for the log
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // An error is a transport failure (cannot connect, timeout, TLS); any HTTP status is a response.
  virtual Result<HttpResponse> post(const HttpRequest& request) = 0;
};

class PocoHttpClient final : public HttpClient {
 public:
  Result<HttpResponse> post(const HttpRequest& request) override;
};

}  // namespace perfwatch::alerts
